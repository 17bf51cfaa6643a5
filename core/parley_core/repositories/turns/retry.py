"""/retry: queue the question of a user's last answer again, with that answer kept out of the history.

The old answer stays in ``messages`` (marked ``replaced``: the stats and the budget still count
it); the question(s) it answered go back into ``bot_inbox`` and the next turn answers them anew.
When the user's newest questions went unanswered (models down, budget used up), those are queued
again instead. One transaction, under the user row's lock, so a turn cannot start or finish in
between.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.repositories.turns.lease import LEASE_IS_FREE, lease_parameters
from parley_core.repositories.turns.records import LeaseTerms

RetryStatus = Literal["queued", "busy", "nothing", "duplicate"]

RECENT_MESSAGES = 200  # how far back the question of the last answer is looked for

_SEEN = text(
    """
INSERT INTO telegram_updates AS t (update_id) VALUES (CAST(:update_id AS bigint))
ON CONFLICT (update_id) DO UPDATE SET seen_at = now()
WHERE t.seen_at < now() - make_interval(secs => CAST(:dedupe_seconds AS double precision))
RETURNING 1
"""
)
_LOCK_USER = text("SELECT 1 FROM users WHERE id = CAST(:user_id AS bigint) FOR UPDATE")
_BUSY = text("SELECT EXISTS (SELECT 1 FROM bot_inbox WHERE user_id = CAST(:user_id AS bigint))")
_RECENT = text(
    """
SELECT id, role, unanswered, replaced FROM messages
WHERE user_id = CAST(:user_id AS bigint) AND deleted_at IS NULL
ORDER BY created_at DESC
LIMIT CAST(:limit AS integer)
"""
)
_REPLACE = text("UPDATE messages SET replaced = true WHERE id = CAST(:id AS uuid)")
_REOPEN = text("UPDATE messages SET unanswered = false WHERE id = ANY(CAST(:ids AS uuid[])) AND unanswered")
_QUEUE = text(
    """
INSERT INTO bot_inbox (message_id, user_id, chat_id, telegram_message_id, sent_at)
SELECT id, CAST(:user_id AS bigint), CAST(:chat_id AS bigint), CAST(:telegram_message_id AS bigint),
       CAST(:sent_at AS timestamptz)
FROM unnest(CAST(:ids AS uuid[])) AS q(id)
"""
)
_TAKE_LEASE = text(
    f"""
UPDATE users u SET lease_holder = CAST(:holder AS uuid)
WHERE u.id = CAST(:user_id AS bigint) AND {LEASE_IS_FREE}
RETURNING 1
"""  # noqa: S608  (a constant SQL fragment; values are bound parameters)
)


@dataclass(frozen=True)
class Retry:
    """What /retry did: ``queued`` (``leased``: the caller now holds the user's lease), ``busy`` (a
    turn is in progress), ``nothing`` (no answer or question to retry), ``duplicate`` (update seen)."""

    status: RetryStatus
    leased: bool = False
    replaced_answer: uuid.UUID | None = None


@dataclass(frozen=True)
class _Recent:
    id: uuid.UUID
    role: str
    unanswered: bool
    replaced: bool


def _plan(recent: list[_Recent]) -> tuple[uuid.UUID | None, list[uuid.UUID]]:
    """From the newest messages: (the answer to replace or None, the questions to queue, oldest first)."""
    live = [m for m in recent if not (m.role == "assistant" and m.replaced)]
    unanswered = []
    for message in live:  # newest first
        if message.role != "user" or not message.unanswered:
            break
        unanswered.append(message.id)
    if unanswered:
        return None, unanswered[::-1]
    answer = next((m for m in live if m.role == "assistant"), None)
    if answer is None:
        return None, []
    questions = []
    for message in live[live.index(answer) + 1 :]:
        if message.role == "assistant":
            break
        if message.role == "user" and not message.unanswered:
            questions.append(message.id)
    return (answer.id, questions[::-1]) if questions else (None, [])


async def retry_last_answer(
    conn: AsyncConnection,
    *,
    user_id: int,
    update_id: int,
    chat_id: int,
    telegram_message_id: int,
    sent_at: datetime,
    lease: LeaseTerms,
    dedupe_seconds: float,
) -> Retry:
    """Queue the user's last question again (answered in ``chat_id``); run inside a transaction."""
    seen = await conn.execute(_SEEN, {"update_id": update_id, "dedupe_seconds": float(dedupe_seconds)})
    if seen.first() is None:
        return Retry("duplicate")
    params = {"user_id": user_id}
    if (await conn.execute(_LOCK_USER, params)).first() is None:
        return Retry("nothing")
    if (await conn.execute(_BUSY, params)).scalar_one():
        return Retry("busy")
    rows = await conn.execute(_RECENT, {**params, "limit": RECENT_MESSAGES})
    answer, questions = _plan([_Recent(r.id, str(r.role), r.unanswered, r.replaced) for r in rows])
    if not questions:
        return Retry("nothing")
    if answer is not None:
        await conn.execute(_REPLACE, {"id": answer})
    else:
        await conn.execute(_REOPEN, {"ids": questions})
    await conn.execute(
        _QUEUE,
        {
            **params,
            "ids": questions,
            "chat_id": chat_id,
            "telegram_message_id": telegram_message_id,
            "sent_at": sent_at,
        },
    )
    leased = (await conn.execute(_TAKE_LEASE, {**params, **lease_parameters(lease)})).first() is not None
    return Retry("queued", leased=leased, replaced_answer=answer)
