"""/model: which models a user may pick, storing the choice, and the model a turn asks first.

The allowlist is LLM_MODEL (the default) and LLM_MODEL_CHOICES. The choice replaces LLM_MODEL as
the primary; LLM_FALLBACK_MODEL stays the fallback. A stored choice that is no longer on the list
(an operator removed it) is forgotten at the user's next turn, which uses the default and says so.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.i18n import N_, _
from parley_bot.services.database import execute
from parley_core.repositories import user_settings, users
from parley_core.repositories.users import TelegramProfile
from parley_core.settings import BotSettings

BUTTON_PREFIX = "model:"
WITHDRAWN = N_(
    "The model {chosen} you picked is no longer offered, so {default} answered. Pick another with /model."
)


@dataclass(frozen=True)
class TurnModel:
    """The model a turn asks first (None: LLM_MODEL) and a note for the user, if any."""

    primary: str | None
    note: str | None = None
    withdrawn: str | None = None  # the stored choice to forget


def for_turn(chosen: str | None, settings: BotSettings) -> TurnModel:
    """The primary model for a user whose stored choice is ``chosen``."""
    if chosen is None or chosen == settings.llm_model:
        return TurnModel(primary=None)
    if chosen in settings.offered_models:
        return TurnModel(primary=chosen)
    return TurnModel(
        primary=None,
        note=_(WITHDRAWN).format(chosen=chosen, default=settings.llm_model),
        withdrawn=chosen,
    )


def button_data(index: int, model: str) -> str:
    """Callback data of the button for ``model`` (Telegram allows 64 bytes; a model id may be longer).

    The checksum makes a button shown before the allowlist changed pick nothing rather than the
    model that now has its place.
    """
    return f"{BUTTON_PREFIX}{index}:{zlib.crc32(model.encode()):08x}"


def model_of_button(data: str, settings: BotSettings) -> str | None:
    """The offered model a button's data names, or None when the list changed since it was shown."""
    try:
        index = int(data.removeprefix(BUTTON_PREFIX).split(":", 1)[0])
    except ValueError:
        return None
    offered = settings.offered_models
    if not 0 <= index < len(offered):
        return None
    model = offered[index]
    return model if button_data(index, model) == data else None


async def set_model(*, engine: AsyncEngine, profile: TelegramProfile, model: str | None) -> None:
    """Store the user's choice (None: the default model)."""

    async with engine.begin() as conn:
        await users.upsert_user(conn, profile)
        await user_settings.set_model(conn, user_id=profile.id, model=model)


async def forget_withdrawn(*, engine: AsyncEngine, user_id: int, model: str) -> None:
    """Forget a choice that left the allowlist (unless the user has picked another meanwhile)."""
    await execute(engine, lambda conn: user_settings.forget_model(conn, user_id=user_id, model=model))
