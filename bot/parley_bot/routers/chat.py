"""Plain text: the conversation with the LLM."""

from __future__ import annotations

import time

from aiogram import Bot, Router
from aiogram.types import Message, Update
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.filters import GROUP_CHATS, AddressedToBot, HasText, IsCommand
from parley_bot.incoming import profile_of, prompt_text
from parley_bot.llm import LLMClient
from parley_bot.services import conversation
from parley_bot.services.locks import UserLocks
from parley_bot.telegram import ReplyStream, StreamMode, TelegramOutput
from parley_core.settings import BotSettings

router = Router(name=__name__)
router.message.filter(AddressedToBot())

UNAVAILABLE = (
    "Sorry, the language models are temporarily unavailable. I saved your message — "
    "please try again in a minute."
)
TOO_LONG = "Sorry, that message is too long for the model. Please shorten it or split it up."
BUSY = "I'm still answering your previous message. Please send this one again in a minute."
EMPTY = "Send me your question as text."
UNKNOWN_COMMAND = "I don't know that command. /help lists the ones I do."


def _stream_mode(settings: BotSettings, message: Message) -> StreamMode | None:
    if message.chat.type != "private" or settings.stream_replies == "off":
        return None
    return "edit" if settings.stream_replies == "edit" else "draft"


@router.message(IsCommand())
async def unknown_command_handler(message: Message, *, output: TelegramOutput) -> None:
    """Answer a command no other router knows instead of sending it to the LLM."""
    await output.send_plain(message.chat.id, UNKNOWN_COMMAND)


@router.message(HasText())
async def chat_handler(
    message: Message,
    *,
    event_update: Update,
    bot: Bot,
    engine: AsyncEngine,
    llm: LLMClient,
    settings: BotSettings,
    locks: UserLocks,
    output: TelegramOutput,
) -> None:
    """Answer a text message with the LLM, remembering the conversation."""
    if message.from_user is None:
        return
    started = time.perf_counter()
    chat_id = message.chat.id
    reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
    text = await prompt_text(message, bot)
    if not text:
        await output.send_plain(chat_id, EMPTY, reply_to=reply_to)
        return
    mode = _stream_mode(settings, message)
    stream = (
        ReplyStream(output, chat_id, mode=mode, interval_seconds=settings.stream_edit_interval_seconds)
        if mode
        else None
    )
    async with locks.hold(message.from_user.id), output.typing(chat_id):
        result = await conversation.take_turn(
            engine=engine,
            llm=llm,
            settings=settings,
            profile=profile_of(message.from_user),
            update_id=event_update.update_id,
            text=text,
            on_partial=stream.update if stream else None,
        )
        if result.outcome == "duplicate":
            return
        if result.completion is not None:
            reply = result.completion.text
        else:
            reply = {"unavailable": UNAVAILABLE, "too_long": TOO_LONG}.get(result.outcome, BUSY)
        if stream is not None:
            await stream.finish(reply)
        else:
            await output.send_text(chat_id, reply, reply_to=reply_to)
    metrics.BOT_REPLY_DURATION.labels(outcome=result.outcome).observe(time.perf_counter() - started)
