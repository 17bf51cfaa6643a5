"""/reset (forget the conversation) and /history <n> (how much of it the LLM sees)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, User
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import _, ngettext
from parley_bot.incoming import FromUser, profile_of
from parley_bot.intake import Acceptance
from parley_bot.services import preferences
from parley_bot.services.turns import TurnRunner
from parley_bot.telegram import TelegramOutput
from parley_core.settings import BotSettings


async def command_reset_handler(
    message: Message,
    *,
    user: User,
    engine: AsyncEngine,
    turns: TurnRunner,
    output: TelegramOutput,
    acceptance: Acceptance,
) -> None:
    """Soft-delete the user's history, after any answer still in progress."""
    # Confirmed to Telegram now, not after the answer in progress: polling must not wait for it.
    acceptance.accept()
    await turns.idle(user.id)
    count = await preferences.reset_history(engine=engine, user_id=user.id)
    await output.send_plain(
        message.chat.id,
        ngettext(
            "Done — I forgot our conversation ({count} message). Let's start over.",
            "Done — I forgot our conversation ({count} messages). Let's start over.",
            count,
        ).format(count=count),
    )


async def command_history_handler(
    message: Message,
    *,
    user: User,
    command: CommandObject,
    engine: AsyncEngine,
    settings: BotSettings,
    output: TelegramOutput,
) -> None:
    """Show or set how many recent messages the LLM sees (a turn in progress keeps what it read)."""
    if not command.args:
        current = await preferences.effective_settings(engine=engine, settings=settings, user_id=user.id)
        await output.send_plain(
            message.chat.id,
            _("I keep the last {count} messages in mind. Change it with /history <n> (1-{max}).").format(
                count=current.max_history_messages, max=settings.history_max_messages
            ),
        )
        return
    try:
        value = preferences.parse_history_length(command.args, settings=settings)
        await preferences.set_history_length(
            engine=engine,
            settings=settings,
            profile=profile_of(user),
            max_history_messages=value,
        )
    except preferences.InvalidSettingError as exc:
        await output.send_plain(message.chat.id, _("Sorry, {reason}.").format(reason=exc))
        return
    await output.send_plain(
        message.chat.id, _("OK — from now on I keep the last {count} messages in mind.").format(count=value)
    )


def create_router() -> Router:
    """/reset and /history, for commands meant for the bot from a user."""
    router = Router(name=__name__)
    router.message.filter(IsCommand(), AddressedToBot(), FromUser())
    router.message.register(command_reset_handler, Command("reset"))
    router.message.register(command_history_handler, Command("history"))
    return router
