"""Storing a turn's answer with its outbox row, and the previews streamed before it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.repositories import budgets
from parley_core.repositories.turns.records import ReplyDraft, StoredAnswer

# The lease is checked under a row lock (FOR UPDATE re-reads a row changed meanwhile), so a
# process whose lease was taken over can never consume messages or store a second answer.
_FINISH_SQL = """
WITH lease AS (
    SELECT 1 FROM users WHERE id = CAST(:user_id AS bigint) AND lease_holder = CAST(:holder AS uuid)
    FOR UPDATE
),
consumed AS (
    DELETE FROM bot_inbox
    WHERE message_id = ANY(CAST(:message_ids AS uuid[])) AND EXISTS (SELECT 1 FROM lease)
    RETURNING message_id
),
answer AS (
    INSERT INTO messages (user_id, role, content, content_length, model, prompt_tokens,
                          completion_tokens, latency_ms, fallback_used, cost_usd, stopped)
    SELECT CAST(:user_id AS bigint), 'assistant', CAST(:content AS text), CAST(:content_length AS integer),
           CAST(:model AS varchar), CAST(:prompt_tokens AS integer), CAST(:completion_tokens AS integer),
           CAST(:latency_ms AS integer), CAST(:fallback_used AS boolean), CAST(:cost_usd AS numeric),
           CAST(:stopped AS boolean)
    WHERE CAST(:store_answer AS boolean) AND EXISTS (SELECT 1 FROM consumed)
    RETURNING id
),
usage AS ({record_usage}),
{unanswered}reply AS (
    INSERT INTO bot_outbox (user_id, message_id, chat_id, reply_to_message_id, content, markdown,
                            parts_total, preview_message_ids, created_at)
    SELECT CAST(:user_id AS bigint), CASE WHEN r.is_answer THEN (SELECT id FROM answer) END,
           r.chat_id, r.reply_to, r.text, r.markdown, r.parts_total,
           CASE WHEN r.is_answer THEN CAST(:preview_message_ids AS bigint[]) ELSE '{}'::bigint[] END,
           now() + r.ord * interval '1 microsecond'
    FROM unnest(CAST(:r_chat_ids AS bigint[]), CAST(:r_reply_tos AS bigint[]), CAST(:r_texts AS text[]),
                CAST(:r_markdown AS boolean[]), CAST(:r_parts AS integer[]), CAST(:r_is_answer AS boolean[]))
         WITH ORDINALITY AS r(chat_id, reply_to, text, markdown, parts_total, is_answer, ord)
    WHERE EXISTS (SELECT 1 FROM consumed)
    RETURNING id, created_at
)
SELECT (SELECT count(*) FROM consumed) AS consumed,
       (SELECT coalesce(array_agg(id ORDER BY created_at), '{}') FROM reply) AS outbox_ids
"""
# What the turn consumed is added to the budgets' ledger when the turn stored its answer, or when
# another process took the lease meanwhile (the tokens were spent all the same) — not when the
# statement is repeated after its first run committed (then the lease is ours and nothing is left).
_FINISH_SQL = _FINISH_SQL.replace(
    "{record_usage}",
    budgets.record_usage(when="EXISTS (SELECT 1 FROM consumed) OR NOT EXISTS (SELECT 1 FROM lease)"),
)
# A turn that ends without an answer also marks its questions, so later turns leave them out of the
# history. Its own statement: in the answered case (nearly every turn) the extra UPDATE would still
# be planned, against a parameter unknown to a generic plan, and it cost ~8 % of the throughput.
_FINISH = text(_FINISH_SQL.replace("{unanswered}", ""))
_FINISH_UNANSWERED = text(
    _FINISH_SQL.replace(
        "{unanswered}",
        """unanswered AS (
    UPDATE messages SET unanswered = true WHERE id IN (SELECT message_id FROM consumed)
),
""",
    )
)


_RECORD_PREVIEW = text(
    """
UPDATE bot_inbox SET preview_message_ids = array_append(preview_message_ids, CAST(:preview AS bigint))
WHERE message_id = CAST(:message_id AS uuid)
"""
)


async def finish_turn(
    conn: AsyncConnection,
    *,
    user_id: int,
    holder: uuid.UUID,
    message_ids: list[uuid.UUID],
    answer: StoredAnswer | None,
    replies: list[ReplyDraft],
    usage_day: date | None = None,
    extra_tokens: int = 0,
    extra_usd: float | None = None,
) -> list[uuid.UUID] | None:
    """Consume ``message_ids`` from the inbox, store ``answer`` and queue ``replies`` in the outbox.

    The answer's tokens and cost — and ``extra_tokens``/``extra_usd``, what attempts without an
    answer consumed — are added to the user's budget ledger for the UTC day ``usage_day`` (the
    current one by default).

    Returns the outbox ids in order, or None when the lease is no longer the caller's (or the
    messages are gone, e.g. after /reset): then nothing was stored and nothing may be sent.
    """
    previews = next((r.preview_message_ids for r in replies if r.is_answer), ())
    tokens = (answer.tokens if answer else 0) + extra_tokens
    cost = answer.dollars if answer else None
    spent = (cost or Decimal(0)) + (Decimal(repr(extra_usd)) if extra_usd else Decimal(0))
    row = (
        await conn.execute(
            _FINISH if answer is not None else _FINISH_UNANSWERED,
            {
                "user_id": user_id,
                "holder": holder,
                "message_ids": message_ids,
                "store_answer": answer is not None,
                "content": answer.content if answer else "",
                "content_length": len(answer.content) if answer else 0,
                "model": answer.model[:128] if answer else None,
                "prompt_tokens": answer.prompt_tokens if answer else None,
                "completion_tokens": answer.completion_tokens if answer else None,
                "latency_ms": answer.latency_ms if answer else None,
                "fallback_used": answer.fallback_used if answer else False,
                "cost_usd": cost,
                "stopped": answer.stopped if answer else False,
                "record_usage": bool(tokens or spent),
                "usage_day": usage_day or datetime.now(UTC).date(),
                "usage_tokens": tokens,
                "usage_usd": spent,
                "preview_message_ids": list(previews),
                "r_chat_ids": [r.chat_id for r in replies],
                "r_reply_tos": [r.reply_to_message_id for r in replies],
                "r_texts": [r.text for r in replies],
                "r_markdown": [r.markdown for r in replies],
                "r_parts": [r.parts_total for r in replies],
                "r_is_answer": [r.is_answer for r in replies],
            },
        )
    ).one()
    if not row.consumed:
        return None
    return list(row.outbox_ids)


async def record_preview(conn: AsyncConnection, *, message_id: uuid.UUID, preview_message_id: int) -> None:
    """Remember a streaming preview sent for the turn of ``message_id``, so a resumed turn reuses it."""
    await conn.execute(_RECORD_PREVIEW, {"message_id": message_id, "preview": preview_message_id})


_RECORD_TRANSCRIPT = text(
    """
UPDATE messages SET content = CAST(:content AS text), content_length = CAST(:length AS integer)
WHERE id = CAST(:message_id AS uuid)
"""
)


async def record_transcript(conn: AsyncConnection, *, message_id: uuid.UUID, content: str) -> None:
    """Store what a voice message said in place of its description (the history reads it)."""
    await conn.execute(
        _RECORD_TRANSCRIPT, {"message_id": message_id, "content": content, "length": len(content)}
    )
