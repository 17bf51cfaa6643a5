"""/start and /help: who the bot is, what it stores and how to delete it."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import N_, _
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.formatting import escape

HELP = N_(
    "<b>Commands</b>\n"
    "/reset — forget our conversation and start over\n"
    "/settings — show your settings\n"
    "/system &lt;text&gt; — set your own system prompt; /system reset restores the default\n"
    "/history &lt;n&gt; — how many recent messages I keep in mind\n"
    "/model — pick the model that answers you\n"
    "/retry — answer my last question again (Stop, under an answer being written, stops it)\n"
    "/usage — what your answers used, and what is left of your budget\n"
    "/language — pick the language I speak\n"
    "/help — this list\n\n"
    "I answer text only. In groups, mention me or reply to one of my messages."
)


async def command_start_handler(message: Message, *, output: TelegramOutput) -> None:
    """Greet the user and say what is stored about them and how to delete it."""
    greeting = (
        _("Hi {name}! I'm Parley, an AI assistant. Send me a question and I'll answer.").format(
            name=escape(message.from_user.first_name)
        )
        if message.from_user
        else _("Hi! I'm Parley, an AI assistant. Send me a question and I'll answer.")
    )
    stored = _(
        "<b>What I store</b>: your messages and my answers (so I remember the conversation), "
        "your settings, and your Telegram name, username and language.\n"
        "<b>Deleting it</b>: /reset makes me forget the conversation — the messages are marked "
        "deleted and never shown to the model again."
    )
    text = f"{greeting}\n\n{stored}\n\n{_(HELP)}"
    await output.send_html(message.chat.id, text)


async def command_help_handler(message: Message, *, output: TelegramOutput) -> None:
    """List the commands."""
    await output.send_html(message.chat.id, _(HELP))


def create_router() -> Router:
    """/start and /help, for commands meant for the bot."""
    router = Router(name=__name__)
    router.message.filter(IsCommand(), AddressedToBot())
    router.message.register(command_start_handler, CommandStart())
    router.message.register(command_help_handler, Command("help"))
    return router
