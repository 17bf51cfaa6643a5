"""The catch-all, included last: what the bot does not read (stickers, videos, locations...) gets a
polite "text only"."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from parley_bot.filters import GROUP_CHATS, AddressedToBot
from parley_bot.i18n import N_, _
from parley_bot.telegram import TelegramOutput

TEXT_ONLY = N_(
    "Sorry, I read text, photos, documents and voice messages, not this. Please send your question as text."
)


async def unsupported_handler(message: Message, *, output: TelegramOutput) -> None:
    """Reply to stickers, videos and the like that the bot does not read them."""
    reply_to = message.message_id if message.chat.type in GROUP_CHATS else None
    await output.send_plain(message.chat.id, _(TEXT_ONLY), reply_to=reply_to)


def create_router() -> Router:
    """The catch-all for messages meant for the bot that no other router took."""
    router = Router(name=__name__)
    router.message.filter(AddressedToBot())
    router.message.register(unsupported_handler)
    return router
