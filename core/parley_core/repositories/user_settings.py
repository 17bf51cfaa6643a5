"""Per-user preferences: how much history the LLM sees and the user's own system prompt."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import UserSettings


@dataclass(frozen=True)
class UserPreferences:
    """A user's stored settings; ``None`` fields mean "the service default"."""

    max_history_messages: int | None
    system_prompt: str | None


async def get_preferences(conn: AsyncConnection, *, user_id: int) -> UserPreferences:
    """The user's settings, or all defaults when none were ever set."""
    row = (
        await conn.execute(
            select(UserSettings.max_history_messages, UserSettings.system_prompt).where(
                UserSettings.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return UserPreferences(max_history_messages=None, system_prompt=None)
    return UserPreferences(max_history_messages=row.max_history_messages, system_prompt=row.system_prompt)


async def set_system_prompt(conn: AsyncConnection, *, user_id: int, system_prompt: str | None) -> None:
    """Store (or with ``None`` clear) the user's system prompt; the user row must exist."""
    statement = insert(UserSettings).values(user_id=user_id, system_prompt=system_prompt)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[UserSettings.user_id],
            set_={"system_prompt": statement.excluded.system_prompt, "updated_at": func.now()},
        )
    )


async def set_max_history(conn: AsyncConnection, *, user_id: int, max_history_messages: int) -> None:
    """Store how many messages of history the LLM sees; the user row must exist."""
    statement = insert(UserSettings).values(user_id=user_id, max_history_messages=max_history_messages)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[UserSettings.user_id],
            set_={"max_history_messages": statement.excluded.max_history_messages, "updated_at": func.now()},
        )
    )
