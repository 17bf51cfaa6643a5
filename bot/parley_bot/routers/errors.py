"""One place for unexpected failures: log them and tell the user, never go silent or crash."""

from __future__ import annotations

from aiogram import Router
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import ErrorEvent

from parley_bot.i18n import N_, _
from parley_bot.telegram import TelegramOutput
from parley_core.logging import get_logger

log = get_logger(__name__)

SORRY = N_("Sorry, something went wrong on my side. Please try again in a minute.")


async def handle_error(event: ErrorEvent, *, output: TelegramOutput) -> None:
    """Log the exception (redacted, without message text) and apologise to the user.

    A user who blocked the bot (403) is a warning, not an error, and gets no apology: Telegram
    would refuse that too.
    """
    message = event.update.message
    ids = {"update_id": event.update.update_id}
    if message is not None:
        ids["chat_id"] = message.chat.id
        if message.from_user is not None:
            ids["user_id"] = message.from_user.id
    if isinstance(event.exception, TelegramForbiddenError):
        log.warning("user_blocked_bot", **ids)
        return
    log.error("update_failed", error=type(event.exception).__name__, exc_info=event.exception, **ids)
    if message is None:
        return
    try:
        await output.send_plain(message.chat.id, _(SORRY))
    except Exception as exc:  # Telegram itself may be the failure; the log line above is what counts
        log.warning("apology_not_sent", error=type(exc).__name__, **ids)


def create_router() -> Router:
    """The error handler, for every update."""
    router = Router(name=__name__)
    router.errors.register(handle_error)
    return router
