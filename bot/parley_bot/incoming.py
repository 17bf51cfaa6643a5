"""Reading what the services need out of aiogram's types (the services never see aiogram)."""

from __future__ import annotations

from aiogram import Bot
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
    """The message text without the bot's @mention (what the LLM should read)."""
    text = message.text or ""
    if message.chat.type in GROUP_CHATS:
        username = await bot_username(bot)
        if username:
            text = " ".join(word for word in text.split(" ") if word.lower() != f"@{username}")
    return text.strip()
