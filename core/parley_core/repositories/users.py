"""Telegram users: profile upserts.

The per-user turn lease (``users.lease_holder``) is taken and released inside the bot's turn
statements (``turns``), so it costs no round trip of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
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
