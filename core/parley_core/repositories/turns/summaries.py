"""Summaries of long conversations: what is still unsummarised, and the summary that replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import MessageRole

# The history the work statement reads, minus the newest ``keep`` messages, oldest first.
_UNSUMMARISED = text(
    """
SELECT h.role, h.content, h.created_at FROM (
    SELECT m.role, m.content, m.created_at FROM messages m
    WHERE m.user_id = CAST(:user_id AS bigint) AND m.deleted_at IS NULL AND NOT m.unanswered
      AND NOT m.replaced AND m.content_length > 0
      AND NOT EXISTS (SELECT 1 FROM bot_inbox b WHERE b.message_id = m.id)
      AND m.created_at > coalesce(CAST(:after AS timestamptz), '-infinity')
    ORDER BY m.created_at DESC
    OFFSET CAST(:keep AS integer) LIMIT CAST(:limit AS integer)
) h ORDER BY h.created_at
"""
)

# Only ever forward: a summary covering less than the stored one (a late writer) changes nothing.
_STORE = text(
    """
INSERT INTO history_summaries AS s (user_id, content, covers_until, messages, model, prompt_tokens,
                                    completion_tokens, cost_usd)
VALUES (CAST(:user_id AS bigint), CAST(:content AS text), CAST(:covers_until AS timestamptz),
        CAST(:messages AS integer), CAST(:model AS varchar), CAST(:prompt_tokens AS integer),
        CAST(:completion_tokens AS integer), CAST(:cost_usd AS numeric))
ON CONFLICT (user_id) DO UPDATE SET
    content = EXCLUDED.content, covers_until = EXCLUDED.covers_until,
    messages = s.messages + EXCLUDED.messages, model = EXCLUDED.model,
    prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,
    cost_usd = EXCLUDED.cost_usd, updated_at = now()
WHERE s.covers_until < EXCLUDED.covers_until
RETURNING 1
"""
)


@dataclass(frozen=True)
class Unsummarised:
    """One answered message the next summary folds in."""

    role: MessageRole
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Summary:
    """A summary to store, with what producing it cost."""

    content: str
    covers_until: datetime
    messages: int
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


async def unsummarised(
    conn: AsyncConnection, *, user_id: int, after: datetime | None, keep: int, limit: int
) -> list[Unsummarised]:
    """The answered messages after ``after`` but the newest ``keep``: at most ``limit``, oldest first."""
    rows = await conn.execute(
        _UNSUMMARISED, {"user_id": user_id, "after": after, "keep": keep, "limit": limit}
    )
    return [Unsummarised(MessageRole(row.role), row.content, row.created_at) for row in rows]


async def store_summary(conn: AsyncConnection, *, user_id: int, summary: Summary) -> bool:
    """Store the user's summary unless a later one is already there; whether it was stored."""
    row = await conn.execute(
        _STORE,
        {
            "user_id": user_id,
            "content": summary.content,
            "covers_until": summary.covers_until,
            "messages": summary.messages,
            "model": summary.model[:128],
            "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens,
            "cost_usd": None if summary.cost_usd is None else Decimal(repr(summary.cost_usd)),
        },
    )
    return row.first() is not None
