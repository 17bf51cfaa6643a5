"""The user's own settings: history length, system prompt, and forgetting the conversation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.i18n import _
from parley_core.repositories import messages, user_settings, users
from parley_core.repositories.users import TelegramProfile
from parley_core.settings import BotSettings


class InvalidSettingError(ValueError):
    """A value the user asked for is out of bounds; the message says which bounds, for the reply."""


@dataclass(frozen=True)
class EffectiveSettings:
    """What the bot uses for a user, and whether each value is the user's own or the default."""

    max_history_messages: int
    history_is_default: bool
    system_prompt: str
    prompt_is_default: bool
    model: str | None = None  # the stored /model choice (None: LLM_MODEL); it may have left the allowlist


async def effective_settings(
    *, engine: AsyncEngine, settings: BotSettings, user_id: int
) -> EffectiveSettings:
    """The user's settings with the service defaults filled in."""
    async with engine.connect() as conn:
        stored = await user_settings.get_preferences(conn, user_id=user_id)
    return EffectiveSettings(
        max_history_messages=stored.max_history_messages or settings.history_default_messages,
        history_is_default=stored.max_history_messages is None,
        system_prompt=stored.system_prompt or settings.llm_system_prompt,
        prompt_is_default=stored.system_prompt is None,
        model=stored.model,
    )


async def set_system_prompt(
    *, engine: AsyncEngine, settings: BotSettings, profile: TelegramProfile, system_prompt: str | None
) -> None:
    """Store the user's system prompt (``None`` restores the default); refuses over-long prompts."""
    if system_prompt is not None:
        system_prompt = system_prompt.strip()
        if not system_prompt:
            raise InvalidSettingError(_("the system prompt is empty"))
        if len(system_prompt) > settings.system_prompt_max_chars:
            raise InvalidSettingError(
                _("the system prompt may be at most {max} characters (yours has {length})").format(
                    max=settings.system_prompt_max_chars, length=len(system_prompt)
                )
            )
    async with engine.begin() as conn:
        await users.upsert_user(conn, profile)
        await user_settings.set_system_prompt(conn, user_id=profile.id, system_prompt=system_prompt)


def parse_history_length(raw: str, *, settings: BotSettings) -> int:
    """The number in "/history <n>", within 1..HISTORY_MAX_MESSAGES."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidSettingError(
            _("give a whole number from 1 to {max}").format(max=settings.history_max_messages)
        ) from None
    if not 1 <= value <= settings.history_max_messages:
        raise InvalidSettingError(
            _("the history length must be from 1 to {max}").format(max=settings.history_max_messages)
        )
    return value


async def set_history_length(
    *, engine: AsyncEngine, settings: BotSettings, profile: TelegramProfile, max_history_messages: int
) -> None:
    """Store how many messages of history the LLM sees."""
    if not 1 <= max_history_messages <= settings.history_max_messages:
        raise InvalidSettingError(
            _("the history length must be from 1 to {max}").format(max=settings.history_max_messages)
        )
    async with engine.begin() as conn:
        await users.upsert_user(conn, profile)
        await user_settings.set_max_history(
            conn, user_id=profile.id, max_history_messages=max_history_messages
        )


async def reset_history(*, engine: AsyncEngine, user_id: int) -> int:
    """Soft-delete the user's conversation (the rows stay, marked deleted); returns how many messages."""
    async with engine.begin() as conn:
        return await messages.soft_delete_history(conn, user_id=user_id)


async def set_language(*, engine: AsyncEngine, profile: TelegramProfile, language: str | None) -> None:
    """Store the language the user picked (None: follow their Telegram app again)."""
    async with engine.begin() as conn:
        await users.upsert_user(conn, profile)
        await user_settings.set_language(conn, user_id=profile.id, language=language)
