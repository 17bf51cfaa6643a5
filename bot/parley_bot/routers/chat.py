"""Questions — text, photos, documents, voice — accepted (stored and queued) here, answered by the
user's worker (services/turns.py). A file is stored as Telegram's description of it; the turn that
answers fetches it (services/reading.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message, Update, User

from parley_bot import metrics
from parley_bot.filters import GROUP_CHATS, AddressedToBot, IsCommand
from parley_bot.i18n import N_, _
from parley_bot.incoming import ChatFile, ChatText, profile_of
from parley_bot.intake import Acceptance
from parley_bot.services.attachments import attachment_of, describe, refusal_at_intake
from parley_bot.services.turns import TurnRunner
from parley_bot.telegram import TelegramOutput
from parley_core.logging import get_logger
from parley_core.repositories.turns import Attachment
from parley_core.settings import BotSettings

log = get_logger(__name__)

EMPTY = N_("Send me your question as text.")
UNKNOWN_COMMAND = N_("I don't know that command. /help lists the ones I do.")
QUEUE_FULL = N_(
    "I'm still working on your earlier messages, so I did not take this one. "
    "Please send it again once I've answered."
)


async def unknown_command_handler(message: Message, *, output: TelegramOutput) -> None:
    """Answer a command no other router knows instead of sending it to the LLM."""
    await output.send_plain(message.chat.id, _(UNKNOWN_COMMAND))


async def chat_handler(
    message: Message,
    *,
    user: User,
    prompt: str,
    event_update: Update,
    turns: TurnRunner,
    output: TelegramOutput,
    acceptance: Acceptance,
) -> None:
    """Store the message for its answer; the update is confirmed to Telegram once it is stored."""
    reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
    if not prompt:
        await output.send_plain(message.chat.id, _(EMPTY), reply_to=reply_to)
        return
    await _queue(
        message,
        user=user,
        text=prompt,
        update=event_update,
        turns=turns,
        output=output,
        acceptance=acceptance,
    )


async def file_handler(
    message: Message,
    *,
    user: User,
    prompt: str,
    event_update: Update,
    settings: BotSettings,
    turns: TurnRunner,
    output: TelegramOutput,
    acceptance: Acceptance,
) -> None:
    """Store a photo, document or voice message (its description and file_id) — or say at once why not."""
    attachment = attachment_of(message, settings)
    assert attachment is not None  # ChatFile let only messages with a file through
    refusal = refusal_at_intake(attachment, settings)
    if refusal is not None:
        reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
        log.info("file_refused", kind=attachment.kind)
        await output.send_plain(message.chat.id, refusal, reply_to=reply_to)
        return
    await _queue(
        message,
        user=user,
        text=describe(attachment, prompt),
        attachment=attachment,
        update=event_update,
        turns=turns,
        output=output,
        acceptance=acceptance,
    )


async def _queue(
    message: Message,
    *,
    user: User,
    text: str,
    update: Update,
    turns: TurnRunner,
    output: TelegramOutput,
    acceptance: Acceptance,
    attachment: Attachment | None = None,
) -> None:
    status = await turns.accept(
        profile=profile_of(user),
        update_id=update.update_id,
        chat_id=message.chat.id,
        telegram_message_id=message.message_id,
        sent_at=message.date,
        text=text,
        attachment=attachment,
    )
    acceptance.accept()
    if status == "refused":
        metrics.BOT_MESSAGES_REFUSED.inc()
        log.warning("message_refused", reason="queue_full")
        await output.send_plain(message.chat.id, _(QUEUE_FULL), reply_to=message.message_id)
    elif status == "duplicate":
        log.info("update_duplicate", update_id=update.update_id)


def create_router() -> Router:
    """Messages meant for the bot: commands no other router took, then questions for the LLM."""
    router = Router(name=__name__)
    router.message.filter(AddressedToBot())
    router.message.register(unknown_command_handler, IsCommand())
    router.message.register(chat_handler, ChatText())
    router.message.register(file_handler, ChatFile())
    return router
