"""What handlers read out of a message: its sender, and for chat the text the LLM should read.

``FromUser`` and ``ChatText`` are filters that hand these to the handler: aiogram merges the dict a
filter returns into the handler's keyword arguments, so handlers declare ``user: User`` (and
``prompt: str``) instead of each checking ``message.from_user`` for None. Like every filter of the
bot they are coroutines (see ``filters``). ``profile_of`` turns the sender into what the services
store (the services never see aiogram).
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.types import Message, User

from parley_bot.filters import GROUP_CHATS, bot_username
from parley_core.repositories.users import TelegramProfile


def profile_of(user: User) -> TelegramProfile:
    """The stored fields of a Telegram user."""
    return TelegramProfile(
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        language_code=user.language_code,
    )


async def prompt_text(message: Message, bot: Bot) -> str:
    """The message text (or a file's caption) without the bot's @mention (what the LLM should read)."""
    text = message.text or message.caption or ""
    if message.chat.type in GROUP_CHATS:
        username = await bot_username(bot)
        if username:
            text = " ".join(word for word in text.split(" ") if word.lower() != f"@{username}")
    return text.strip()


class FromUser(Filter):
    """Messages with a sender, handed to the handler as ``user``.

    Telegram leaves the sender out only of some channel messages; the access middleware drops those
    anyway, after the filters.
    """

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        if message.from_user is None:
            return False
        return {"user": message.from_user}


class ChatText(Filter):
    """Text messages (not photos, stickers, voice...) with a sender: hands the handler ``user`` and
    ``prompt``, the text without the bot's @mention (possibly empty)."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        if message.text is None or message.from_user is None:
            return False
        return {"user": message.from_user, "prompt": await prompt_text(message, bot)}


class ChatFile(Filter):
    """Photos, documents and voice messages with a sender: hands the handler ``user`` and
    ``prompt``, the caption without the bot's @mention (possibly empty)."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        if message.from_user is None or not (message.photo or message.document or message.voice):
            return False
        return {"user": message.from_user, "prompt": await prompt_text(message, bot)}
