"""Per-user preferences: how much history the LLM sees, the user's own system prompt and model."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import UserSettings


@dataclass(frozen=True)
class UserPreferences:
    """A user's stored settings; ``None`` fields mean "the service default"."""

    max_history_messages: int | None
    system_prompt: str | None
    model: str | None = None


async def get_preferences(conn: AsyncConnection, *, user_id: int) -> UserPreferences:
    """The user's settings, or all defaults when none were ever set."""
    row = (
        await conn.execute(
            select(UserSettings.max_history_messages, UserSettings.system_prompt, UserSettings.model).where(
                UserSettings.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return UserPreferences(max_history_messages=None, system_prompt=None)
    return UserPreferences(
        max_history_messages=row.max_history_messages, system_prompt=row.system_prompt, model=row.model
    )


async def _store(conn: AsyncConnection, *, user_id: int, **columns: object) -> None:
    """Upsert the given columns of the user's settings row; the user row must exist."""
    statement = insert(UserSettings).values(user_id=user_id, **columns)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[UserSettings.user_id],
            set_={**{name: statement.excluded[name] for name in columns}, "updated_at": func.now()},
        )
    )


async def set_system_prompt(conn: AsyncConnection, *, user_id: int, system_prompt: str | None) -> None:
    """Store (or with ``None`` clear) the user's system prompt; the user row must exist."""
    await _store(conn, user_id=user_id, system_prompt=system_prompt)


async def set_max_history(conn: AsyncConnection, *, user_id: int, max_history_messages: int) -> None:
    """Store how many messages of history the LLM sees; the user row must exist."""
    await _store(conn, user_id=user_id, max_history_messages=max_history_messages)


async def set_model(conn: AsyncConnection, *, user_id: int, model: str | None) -> None:
    """Store (or with ``None`` clear) the user's /model choice; the user row must exist."""
    await _store(conn, user_id=user_id, model=model)


async def forget_model(conn: AsyncConnection, *, user_id: int, model: str) -> None:
    """Clear the user's choice if it is still ``model`` (a newer choice is left alone)."""
    await conn.execute(
        update(UserSettings)
        .where(UserSettings.user_id == user_id, UserSettings.model == model)
        .values(model=None, updated_at=func.now())
    )


async def set_language(conn: AsyncConnection, *, user_id: int, language: str | None) -> None:
    """Store (or with ``None`` clear) the language picked with /language; the user row must exist."""
    await _store(conn, user_id=user_id, language=language)


async def get_language(conn: AsyncConnection, *, user_id: int) -> str | None:
    """The language picked with /language, or None when the user follows their Telegram app."""
    return await conn.scalar(select(UserSettings.language).where(UserSettings.user_id == user_id))
