"""/settings (show) and /system (the user's own system prompt)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, User
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import _
from parley_bot.incoming import FromUser, profile_of
from parley_bot.llm import LLMClient
from parley_bot.services import models, preferences
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.formatting import escape
from parley_core.settings import BotSettings

RESET_WORDS = frozenset({"reset", "default", "clear"})


async def command_settings_handler(
    message: Message,
    *,
    user: User,
    engine: AsyncEngine,
    settings: BotSettings,
    llm: LLMClient,
    output: TelegramOutput,
) -> None:
    """Show the settings the bot uses for this user."""
    current = await preferences.effective_settings(engine=engine, settings=settings, user_id=user.id)
    streaming = _("on") if settings.stream_replies != "off" else _("off")
    chain = llm.models_for(models.for_turn(current.model, settings).primary)
    default = _(" (default)")
    history = _("History: last {count} messages").format(count=current.max_history_messages)
    model_line = _("Model: {chain}").format(chain=escape(_(" → fallback ").join(chain)))
    text = (
        _("<b>Your settings</b>") + "\n"
        f"{history}{default if current.history_is_default else ''} — /history &lt;n&gt;\n"
        + _("System prompt")
        + f"{default if current.prompt_is_default else ''} — /system &lt;text&gt;:\n"
        f"<blockquote>{escape(current.system_prompt)}</blockquote>\n"
        f"{model_line} — /model\n" + _("Streaming in private chats: {state}").format(state=streaming)
    )
    await output.send_html(message.chat.id, text)


async def command_system_handler(
    message: Message,
    *,
    user: User,
    command: CommandObject,
    engine: AsyncEngine,
    settings: BotSettings,
    output: TelegramOutput,
) -> None:
    """Show, set or reset the user's system prompt (a turn in progress keeps the one it read)."""
    args = (command.args or "").strip()
    if not args:
        current = await preferences.effective_settings(engine=engine, settings=settings, user_id=user.id)
        await output.send_html(
            message.chat.id,
            (
                _("Current system prompt (default):")
                if current.prompt_is_default
                else _("Current system prompt:")
            )
            + f"\n<blockquote>{escape(current.system_prompt)}</blockquote>\n"
            + _(
                "Set yours with /system &lt;text&gt; (up to {max} characters); "
                "/system reset restores the default."
            ).format(max=settings.system_prompt_max_chars),
        )
        return
    prompt = None if args.lower() in RESET_WORDS else args
    try:
        await preferences.set_system_prompt(
            engine=engine, settings=settings, profile=profile_of(user), system_prompt=prompt
        )
    except preferences.InvalidSettingError as exc:
        await output.send_plain(message.chat.id, _("Sorry, {reason}.").format(reason=exc))
        return
    reply = (
        _("OK — back to the default system prompt.")
        if prompt is None
        else _("OK — I'll follow your system prompt.")
    )
    await output.send_plain(message.chat.id, reply)


def create_router() -> Router:
    """/settings and /system, for commands meant for the bot from a user."""
    router = Router(name=__name__)
    router.message.filter(IsCommand(), AddressedToBot(), FromUser())
    router.message.register(command_settings_handler, Command("settings"))
    router.message.register(command_system_handler, Command("system"))
    return router
