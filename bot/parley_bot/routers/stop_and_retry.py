"""Stopping an answer being written (Telegram's draft Stop, or the preview's Stop button) and /retry."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, MessageGenerationStopped, Update, User

from parley_bot.filters import GROUP_CHATS, AddressedToBot, IsCommand
from parley_bot.i18n import N_, _
from parley_bot.incoming import FromUser
from parley_bot.services.stops import StopResult
from parley_bot.services.turns import TurnRunner
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.streaming import STOP_PREFIX

STOP_REPLIES: dict[StopResult, str] = {
    "stopped": N_("Stopped."),
    "sent": N_("Stopping…"),
    "not_yours": N_("Only the person who asked can stop this answer."),
    "unknown": N_("This answer is already complete."),
}
RETRY_BUSY = N_("I'm still answering you. Stop the answer or wait for it, then send /retry.")
RETRY_NOTHING = N_("There is no answer of mine to retry yet.")


async def draft_stopped_handler(event: MessageGenerationStopped, *, turns: TurnRunner) -> None:
    """The user pressed Stop on a draft (private chats only: the chat is the user)."""
    await turns.stops.stop(chat_id=event.chat.id, token=event.draft_id, by_user_id=event.chat.id)


async def stop_button_handler(callback: CallbackQuery, *, turns: TurnRunner, output: TelegramOutput) -> None:
    """The Stop button under a preview; only the user who asked may press it."""
    try:
        token = int((callback.data or "").removeprefix(STOP_PREFIX))
    except ValueError:
        token = 0
    result: StopResult = "unknown"
    if callback.message is not None and token:
        result = await turns.stops.stop(
            chat_id=callback.message.chat.id, token=token, by_user_id=callback.from_user.id
        )
    await output.answer_callback(callback.id, _(STOP_REPLIES[result]))


async def command_retry_handler(
    message: Message, *, user: User, event_update: Update, turns: TurnRunner, output: TelegramOutput
) -> None:
    """Answer the user's last question again; the old answer stays stored, out of the history."""
    retried = await turns.retry(
        user_id=user.id,
        update_id=event_update.update_id,
        chat_id=message.chat.id,
        telegram_message_id=message.message_id,
        sent_at=message.date,
    )
    reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
    if retried.status == "busy":
        await output.send_plain(message.chat.id, _(RETRY_BUSY), reply_to=reply_to)
    elif retried.status == "nothing":
        await output.send_plain(message.chat.id, _(RETRY_NOTHING), reply_to=reply_to)


def create_router() -> Router:
    """Stops (draft updates and Stop buttons) and /retry."""
    router = Router(name=__name__)
    router.stopped_message_generation.register(draft_stopped_handler)
    router.callback_query.register(stop_button_handler, F.data.startswith(STOP_PREFIX))
    router.message.register(
        command_retry_handler, IsCommand(), AddressedToBot(), FromUser(), Command("retry")
    )
    return router
