"""Which messages are meant for the bot (every private message; in groups, a mention or a reply),
and cheap checks of what a message is.

All filters here are coroutines on purpose: aiogram runs a synchronous filter, a magic ``F``
expression included, in a worker thread (``asyncio.to_thread``), which costs a thread hop and a GIL
hand-over for every message and every handler it is checked against.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.types import Message

GROUP_CHATS = frozenset({"group", "supergroup"})


async def bot_username(bot: Bot) -> str:
    """The bot's @username in lower case."""
    me = await bot.me()  # cached by aiogram after the first call
    return (me.username or "").lower()


class AddressedToBot(Filter):
    """Private chats always; in groups a mention of the bot, a reply to it, or a command for it.

    A command is for the bot when it names the bot (``/reset@parley_bot``) or names no bot at all
    (``/start``: Telegram delivers such commands to the bots of the group); ``/start@otherbot`` is not.
    """

    async def __call__(self, message: Message, bot: Bot) -> bool:
        if message.chat.type not in GROUP_CHATS:
            return True
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            return True
        text = message.text or message.caption or ""
        username = await bot_username(bot)
        for entity in message.entities or message.caption_entities or []:
            fragment = entity.extract_from(text).lower()
            if entity.type == "mention" and fragment == f"@{username}":
                return True
            if entity.type == "bot_command" and entity.offset == 0:
                addressee = fragment.partition("@")[2]
                if addressee in ("", username):
                    return True
        return False


class IsCommand(Filter):
    """Text messages that start with "/": checked before aiogram's Command filters, which parse the
    text and raise internally for every plain message they are asked about."""

    async def __call__(self, message: Message) -> bool:
        return message.text is not None and message.text.startswith("/")
