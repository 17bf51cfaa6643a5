"""The catch-all, included last: anything that is not text gets a polite "text only"."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from parley_bot.filters import GROUP_CHATS, AddressedToBot
from parley_bot.i18n import N_, _
from parley_bot.telegram import TelegramOutput

TEXT_ONLY = N_("Sorry, I can only read text. Please send your question as a text message.")


async def unsupported_handler(message: Message, *, output: TelegramOutput) -> None:
    """Reply to photos, stickers, voice and the like that the bot only understands text."""
    reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
    await output.send_plain(message.chat.id, _(TEXT_ONLY), reply_to=reply_to)


def create_router() -> Router:
    """The catch-all for messages meant for the bot that no other router took."""
    router = Router(name=__name__)
    router.message.filter(AddressedToBot())
    router.message.register(unsupported_handler)
    return router
