"""Conversation messages: the two statements of a bot turn, history loads and soft deletes.

A turn is one user message and its answer. ``begin_turn`` takes the user's turn lease, stores the
user's message and returns the history the LLM needs — all in one statement; ``finish_turn``
stores the answer and gives the lease back — one statement again. Between the two the LLM is
called with no connection held. Both run on AUTOCOMMIT connections: each is atomic on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import Message, MessageRole
from parley_core.repositories.users import TelegramProfile

TurnStatus = Literal["started", "busy", "duplicate"]


@dataclass(frozen=True)
class HistoryMessage:
    """One earlier message, in the LLM's chat vocabulary."""

    role: MessageRole
    content: str


@dataclass(frozen=True)
class TurnStart:
    """What ``begin_turn`` found.

    ``started``: the lease is ours and the message is stored. ``busy``: another turn of this user
    holds the lease (nothing was written; try again). ``duplicate``: this update was stored before.
    """

    status: TurnStatus
    history: list[HistoryMessage]
    system_prompt: str | None
    max_history_messages: int


# One round trip. CTEs of one statement share a snapshot, so `history` sees the conversation as it
# was *before* this message; the caller appends the new message itself. When the lease is held by
# somebody else the upsert's WHERE fails, `lease` is empty and nothing else is written.
_BEGIN_TURN = text(
    """
WITH seen AS (
    SELECT 1 FROM messages WHERE telegram_update_id = CAST(:update_id AS bigint)
),
lease AS (
    INSERT INTO users AS u (id, username, first_name, last_name, language_code,
                            lease_holder, lease_expires_at)
    SELECT CAST(:user_id AS bigint), CAST(:username AS varchar), CAST(:first_name AS varchar),
           CAST(:last_name AS varchar), CAST(:language_code AS varchar), CAST(:holder AS uuid),
           now() + make_interval(secs => CAST(:lease_seconds AS double precision))
    WHERE NOT EXISTS (SELECT 1 FROM seen)
    ON CONFLICT (id) DO UPDATE SET
        username = EXCLUDED.username,
        first_name = EXCLUDED.first_name,
        last_name = EXCLUDED.last_name,
        language_code = EXCLUDED.language_code,
        lease_holder = EXCLUDED.lease_holder,
        lease_expires_at = EXCLUDED.lease_expires_at
    WHERE u.lease_holder IS NULL OR u.lease_expires_at < now() OR u.lease_holder = EXCLUDED.lease_holder
    RETURNING u.id
),
stored AS (
    INSERT INTO messages (user_id, role, content, content_length, telegram_update_id)
    SELECT id, 'user', CAST(:content AS text), CAST(:content_length AS integer),
           CAST(:update_id AS bigint)
    FROM lease
    RETURNING id
),
prefs AS (
    SELECT coalesce(max(s.max_history_messages), CAST(:default_history AS integer)) AS max_history,
           max(s.system_prompt) AS system_prompt
    FROM user_settings s WHERE s.user_id = CAST(:user_id AS bigint)
)
SELECT
    EXISTS (SELECT 1 FROM seen) AS duplicate,
    EXISTS (SELECT 1 FROM stored) AS started,
    prefs.max_history,
    prefs.system_prompt,
    history.roles,
    history.contents
FROM prefs
CROSS JOIN LATERAL (
    SELECT array_agg(h.role ORDER BY h.created_at) AS roles,
           array_agg(h.content ORDER BY h.created_at) AS contents
    FROM (
        SELECT m.role, m.content, m.created_at FROM messages m
        WHERE m.user_id = CAST(:user_id AS bigint) AND m.deleted_at IS NULL
        ORDER BY m.created_at DESC
        LIMIT greatest(prefs.max_history - 1, 0)
    ) h
) history
"""
)

_FINISH_TURN = text(
    """
WITH released AS (
    UPDATE users SET lease_holder = NULL, lease_expires_at = NULL
    WHERE id = :user_id AND lease_holder = :holder
)
INSERT INTO messages (user_id, role, content, content_length, model, prompt_tokens,
                      completion_tokens, latency_ms, fallback_used)
VALUES (:user_id, 'assistant', :content, :content_length, :model, :prompt_tokens,
        :completion_tokens, :latency_ms, :fallback_used)
"""
)


async def begin_turn(
    conn: AsyncConnection,
    *,
    profile: TelegramProfile,
    update_id: int,
    content: str,
    holder: uuid.UUID,
    lease_seconds: float,
    default_history: int,
) -> TurnStart:
    """Take the user's lease, store their message, and load settings plus the last N-1 messages."""
    row = (
        await conn.execute(
            _BEGIN_TURN,
            {
                **{key: value for key, value in profile.columns().items() if key != "id"},
                "user_id": profile.id,
                "update_id": update_id,
                "content": content,
                "content_length": len(content),
                "holder": holder,
                "lease_seconds": float(lease_seconds),
                "default_history": default_history,
            },
        )
    ).one()
    status: TurnStatus = "duplicate" if row.duplicate else "started" if row.started else "busy"
    history = [
        HistoryMessage(MessageRole(role), content)
        for role, content in zip(row.roles or (), row.contents or (), strict=True)
    ]
    return TurnStart(
        status=status,
        history=history if status == "started" else [],
        system_prompt=row.system_prompt,
        max_history_messages=row.max_history,
    )


async def finish_turn(
    conn: AsyncConnection,
    *,
    user_id: int,
    holder: uuid.UUID,
    content: str,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    latency_ms: int,
    fallback_used: bool,
) -> None:
    """Store the assistant's answer with its model, tokens and latency, and release the lease."""
    await conn.execute(
        _FINISH_TURN,
        {
            "user_id": user_id,
            "holder": holder,
            "content": content,
            "content_length": len(content),
            "model": model[:128],
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "latency_ms": latency_ms,
            "fallback_used": fallback_used,
        },
    )


async def soft_delete_history(conn: AsyncConnection, *, user_id: int) -> int:
    """Mark every live message of the user deleted (/reset); returns how many."""
    result = await conn.execute(
        update(Message)
        .where(Message.user_id == user_id, Message.deleted_at.is_(None))
        .values(deleted_at=func.now())
    )
    return result.rowcount


async def live_messages(conn: AsyncConnection, *, user_id: int) -> Sequence[Message]:
    """Every non-deleted message of the user, oldest first (for inspection and tests)."""
    rows = await conn.execute(
        select(Message.__table__)
        .where(Message.user_id == user_id, Message.deleted_at.is_(None))
        .order_by(Message.created_at)
    )
    return [Message(**row._mapping) for row in rows]
