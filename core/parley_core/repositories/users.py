"""Telegram users: profile upserts and the per-user turn lease the bot serializes messages with.

The lease (``users.lease_holder`` / ``lease_expires_at``) says which bot turn may write a user's
conversation right now. It is taken and released inside the turn's own statements (see
``messages.begin_turn`` / ``finish_turn``), so it costs no extra round trip and no connection is
held while the LLM answers; an expired lease (a crashed replica) is simply taken over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import User


@dataclass(frozen=True)
class TelegramProfile:
    """What Telegram tells us about a user, as stored in ``users``."""

    id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language_code: str | None = None

    def columns(self) -> dict[str, object]:
        """Column values, truncated to the column sizes Telegram may exceed."""
        return {
            "id": self.id,
            "username": self.username[:64] if self.username else None,
            "first_name": self.first_name[:255] if self.first_name else None,
            "last_name": self.last_name[:255] if self.last_name else None,
            "language_code": self.language_code[:16] if self.language_code else None,
        }


async def upsert_user(conn: AsyncConnection, profile: TelegramProfile) -> None:
    """Create the user or refresh the profile fields (one statement)."""
    values = profile.columns()
    statement = insert(User).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[User.id],
        set_={
            **{name: statement.excluded[name] for name in values if name != "id"},
            "updated_at": func.now(),
        },
    )
    await conn.execute(statement)


async def release_lease(conn: AsyncConnection, *, user_id: int, holder: uuid.UUID) -> None:
    """Give the user's turn lease back, if ``holder`` still has it."""
    await conn.execute(
        update(User)
        .where(User.id == user_id, User.lease_holder == holder)
        .values(lease_holder=None, lease_expires_at=None)
    )


async def clear_leases(conn: AsyncConnection) -> int:
    """Drop every lease: safe only where exactly one bot process runs (polling mode start-up)."""
    result = await conn.execute(
        update(User).where(User.lease_holder.is_not(None)).values(lease_holder=None, lease_expires_at=None)
    )
    return result.rowcount
