"""The bot's durable turns: accept a message, claim a user's work, store an answer, count what was sent.

A user's text message is *accepted* by one statement that remembers its update id, stores it in
``messages`` and queues it in ``bot_inbox`` — only then is Telegram told it arrived. A *turn* is
one LLM answer to the queued messages of one user; it belongs to whichever bot process holds the
user's lease (``users.lease_holder``, a ``bot_instances`` id). The answer is stored together with
a ``bot_outbox`` row before anything is sent; each part Telegram accepts is counted there, so a
turn resumed after a crash sends only what is missing.

Every function is one statement, safe on an AUTOCOMMIT connection. In the common case a message
costs three: :func:`accept_message` (which also takes the lease and loads the history),
:func:`finish_turn` after the LLM, :func:`record_delivery` after Telegram accepted the answer.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import MessageRole
from parley_core.repositories.users import TelegramProfile

AcceptStatus = Literal["duplicate", "stored", "refused"]


@dataclass(frozen=True)
class LeaseTerms:
    """Who asks for a lease, and when another process's lease counts as abandoned."""

    holder: uuid.UUID
    stale_seconds: float
    take_over: bool  # False while this process itself may have been cut off from the database


@dataclass(frozen=True)
class HistoryMessage:
    """One earlier message, in the LLM's chat vocabulary."""

    role: MessageRole
    content: str


@dataclass(frozen=True)
class PendingMessage:
    """A stored user message waiting for its answer."""

    message_id: uuid.UUID
    content: str
    chat_id: int
    telegram_message_id: int
    sent_at: datetime
    received_at: datetime
    preview_message_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class OutboxItem:
    """A stored reply and how many of its parts Telegram has accepted."""

    id: uuid.UUID
    chat_id: int
    reply_to_message_id: int | None
    text: str
    markdown: bool
    parts_total: int
    parts_delivered: int
    preview_message_ids: tuple[int, ...]
    attempts: int
    due: bool = True  # False while a postponed delivery waits for its next attempt


@dataclass(frozen=True)
class UserWork:
    """Everything a lease holder needs for a user's next turn."""

    user_id: int
    pending: list[PendingMessage]
    outbox: list[OutboxItem]
    history: list[HistoryMessage]
    system_prompt: str | None
    max_history_messages: int


@dataclass(frozen=True)
class Accepted:
    """What :func:`accept_message` did; ``leased``: the caller now holds the user's lease, and
    ``work`` (when asked for) is what waited before this message."""

    status: AcceptStatus
    leased: bool
    message: PendingMessage | None
    work: UserWork | None


@dataclass(frozen=True)
class ReplyDraft:
    """A reply to store in the outbox; ``is_answer`` links it to the stored answer."""

    chat_id: int
    reply_to_message_id: int | None
    text: str
    markdown: bool
    parts_total: int
    is_answer: bool = False
    preview_message_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class StoredAnswer:
    """The model's answer with what produced it."""

    content: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    fallback_used: bool


# SQL: whether the row `u`'s lease may be taken by :holder: free, already ours, or held by a process
# that stopped heartbeating (and we trust our own view of the database enough to judge that).
LEASE_IS_FREE = """(
    u.lease_holder IS NULL
    OR u.lease_holder = CAST(:holder AS uuid)
    OR (CAST(:take_over AS boolean) AND NOT EXISTS (
        SELECT 1 FROM bot_instances i
        WHERE i.id = u.lease_holder
          AND i.heartbeat_at > now() - make_interval(secs => CAST(:stale_seconds AS double precision))))
)"""

# The user's queued messages, stored replies, settings and recent answered history — for the lease
# holder only (`{gate}` is false otherwise, and PostgreSQL then skips the whole subquery).
_WORK = """
SELECT prefs.max_history, prefs.system_prompt, pending.items AS pending, outbox.items AS outbox,
       history.roles, history.contents
FROM (
    SELECT coalesce(max(s.max_history_messages), CAST(:default_history AS integer)) AS max_history,
           max(s.system_prompt) AS system_prompt
    FROM user_settings s WHERE s.user_id = CAST(:user_id AS bigint)
) prefs
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object(
               'message_id', b.message_id, 'content', m.content, 'chat_id', b.chat_id,
               'telegram_message_id', b.telegram_message_id, 'sent_at', b.sent_at,
               'received_at', b.received_at, 'preview_message_ids', b.preview_message_ids)
             ORDER BY b.received_at, m.created_at), '[]') AS items
    FROM bot_inbox b
    CROSS JOIN LATERAL (  -- from the (small) queue to each message, never a scan of the history
        SELECT x.content, x.created_at, x.deleted_at FROM messages x WHERE x.id = b.message_id OFFSET 0
    ) m
    WHERE b.user_id = CAST(:user_id AS bigint) AND m.deleted_at IS NULL
) pending
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object(
               'id', o.id, 'chat_id', o.chat_id, 'reply_to_message_id', o.reply_to_message_id,
               'content', o.content, 'markdown', o.markdown, 'parts_total', o.parts_total,
               'parts_delivered', o.parts_delivered, 'preview_message_ids', o.preview_message_ids,
               'attempts', o.attempts, 'due', o.next_attempt_at <= now())
             ORDER BY o.created_at), '[]') AS items
    FROM bot_outbox o WHERE o.user_id = CAST(:user_id AS bigint)
) outbox
CROSS JOIN LATERAL (
    SELECT array_agg(h.role ORDER BY h.created_at) AS roles,
           array_agg(h.content ORDER BY h.created_at) AS contents
    FROM (
        SELECT m.role, m.content, m.created_at FROM messages m
        WHERE m.user_id = CAST(:user_id AS bigint) AND m.deleted_at IS NULL AND NOT m.unanswered
          AND NOT EXISTS (SELECT 1 FROM bot_inbox b WHERE b.message_id = m.id)
        ORDER BY m.created_at DESC
        LIMIT greatest(prefs.max_history - 1, 0)
    ) h
) history
WHERE {gate}
"""

# One round trip. CTEs of one statement share a snapshot: the work returned is the state before
# this message, and the caller adds the message itself.
_ACCEPT = text(
    f"""
WITH fresh AS (
    INSERT INTO telegram_updates AS t (update_id) VALUES (CAST(:update_id AS bigint))
    ON CONFLICT (update_id) DO UPDATE SET seen_at = now()
    WHERE t.seen_at < now() - make_interval(secs => CAST(:dedupe_seconds AS double precision))
    RETURNING 1
),
queued AS (
    SELECT count(*) AS n FROM bot_inbox WHERE user_id = CAST(:user_id AS bigint)
),
person AS (
    INSERT INTO users AS u (id, username, first_name, last_name, language_code, lease_holder)
    SELECT CAST(:user_id AS bigint), CAST(:username AS varchar), CAST(:first_name AS varchar),
           CAST(:last_name AS varchar), CAST(:language_code AS varchar), CAST(:holder AS uuid)
    WHERE EXISTS (SELECT 1 FROM fresh)
    ON CONFLICT (id) DO UPDATE SET
        username = EXCLUDED.username,
        first_name = EXCLUDED.first_name,
        last_name = EXCLUDED.last_name,
        language_code = EXCLUDED.language_code,
        lease_holder = CASE WHEN {LEASE_IS_FREE} THEN EXCLUDED.lease_holder ELSE u.lease_holder END
    RETURNING u.lease_holder = CAST(:holder AS uuid) AS leased
),
stored AS (
    INSERT INTO messages (user_id, role, content, content_length, telegram_update_id)
    SELECT CAST(:user_id AS bigint), 'user', CAST(:content AS text), CAST(:content_length AS integer),
           CAST(:update_id AS bigint)
    FROM person WHERE (SELECT n FROM queued) < CAST(:max_queued AS integer)
    RETURNING id
),
inbox AS (
    INSERT INTO bot_inbox (message_id, user_id, chat_id, telegram_message_id, sent_at)
    SELECT id, CAST(:user_id AS bigint), CAST(:chat_id AS bigint), CAST(:telegram_message_id AS bigint),
           CAST(:sent_at AS timestamptz)
    FROM stored
    RETURNING message_id, received_at
)
SELECT NOT EXISTS (SELECT 1 FROM fresh) AS duplicate,
       (SELECT message_id FROM inbox) AS message_id,
       (SELECT received_at FROM inbox) AS received_at,
       coalesce((SELECT leased FROM person), false) AS leased,
       work.*
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    {_WORK.format(gate="CAST(:want_work AS boolean) AND coalesce((SELECT leased FROM person), false)")}
) work ON true
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)

_CLAIM = text(
    f"""
WITH lease AS (
    UPDATE users u SET lease_holder = CAST(:holder AS uuid)
    WHERE u.id = CAST(:user_id AS bigint) AND {LEASE_IS_FREE}
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM lease) AS leased, work.*
FROM (SELECT 1) one
LEFT JOIN LATERAL ({_WORK.format(gate="EXISTS (SELECT 1 FROM lease)")}) work ON true
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)

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
                          completion_tokens, latency_ms, fallback_used)
    SELECT CAST(:user_id AS bigint), 'assistant', CAST(:content AS text), CAST(:content_length AS integer),
           CAST(:model AS varchar), CAST(:prompt_tokens AS integer), CAST(:completion_tokens AS integer),
           CAST(:latency_ms AS integer), CAST(:fallback_used AS boolean)
    WHERE CAST(:store_answer AS boolean) AND EXISTS (SELECT 1 FROM consumed)
    RETURNING id
),
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

_DELIVERED_PART = text(
    """
UPDATE bot_outbox o SET parts_delivered = CAST(:parts_delivered AS integer), attempts = 0
WHERE o.id = CAST(:outbox_id AS uuid)
  AND EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id AND u.lease_holder = CAST(:holder AS uuid))
RETURNING 1
"""
)

# The reply is complete: forget it, and give the lease back unless more work is waiting (then the
# holder goes on with it; a message accepted a moment later takes the free lease itself).
_DELIVERED = text(
    """
WITH sent AS (
    DELETE FROM bot_outbox WHERE id = CAST(:outbox_id AS uuid) RETURNING 1
),
more AS (
    SELECT EXISTS (SELECT 1 FROM bot_inbox WHERE user_id = CAST(:user_id AS bigint))
        OR EXISTS (SELECT 1 FROM bot_outbox
                   WHERE user_id = CAST(:user_id AS bigint) AND id <> CAST(:outbox_id AS uuid)) AS more
),
released AS (
    UPDATE users SET lease_holder = NULL
    WHERE id = CAST(:user_id AS bigint) AND lease_holder = CAST(:holder AS uuid)
      AND CAST(:release AS boolean) AND NOT (SELECT more FROM more)
    RETURNING 1
)
SELECT (SELECT more FROM more) AS more, EXISTS (SELECT 1 FROM released) AS released
"""
)

_POSTPONE = text(
    """
WITH later AS (
    UPDATE bot_outbox
    SET attempts = attempts + 1,
        next_attempt_at = now() + make_interval(secs => CAST(:retry_in_seconds AS double precision))
    WHERE id = CAST(:outbox_id AS uuid)
)
UPDATE users SET lease_holder = NULL
WHERE id = CAST(:user_id AS bigint) AND lease_holder = CAST(:holder AS uuid)
"""
)

_FORGET_REPLIES = text("DELETE FROM bot_outbox WHERE id = ANY(CAST(:outbox_ids AS uuid[]))")

_RELEASE = text(
    """
UPDATE users SET lease_holder = NULL
WHERE id = CAST(:user_id AS bigint) AND lease_holder = CAST(:holder AS uuid)
"""
)

_RECORD_PREVIEW = text(
    """
UPDATE bot_inbox SET preview_message_ids = array_append(preview_message_ids, CAST(:preview AS bigint))
WHERE message_id = CAST(:message_id AS uuid)
"""
)


def lease_parameters(terms: LeaseTerms) -> dict[str, Any]:
    """The bind parameters LEASE_IS_FREE reads."""
    return {"holder": terms.holder, "stale_seconds": float(terms.stale_seconds), "take_over": terms.take_over}


def _pending(item: dict[str, Any]) -> PendingMessage:
    return PendingMessage(
        message_id=uuid.UUID(item["message_id"]),
        content=item["content"],
        chat_id=int(item["chat_id"]),
        telegram_message_id=int(item["telegram_message_id"]),
        sent_at=datetime.fromisoformat(item["sent_at"]),
        received_at=datetime.fromisoformat(item["received_at"]),
        preview_message_ids=tuple(item["preview_message_ids"] or ()),
    )


def _outbox(item: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=uuid.UUID(item["id"]),
        chat_id=int(item["chat_id"]),
        reply_to_message_id=item["reply_to_message_id"],
        text=item["content"],
        markdown=bool(item["markdown"]),
        parts_total=int(item["parts_total"]),
        parts_delivered=int(item["parts_delivered"]),
        preview_message_ids=tuple(item["preview_message_ids"] or ()),
        attempts=int(item["attempts"]),
        due=bool(item["due"]),
    )


def _work(user_id: int, row: Any) -> UserWork:
    def items(value: Any) -> list[dict[str, Any]]:
        return json.loads(value) if isinstance(value, str) else list(value or [])

    history = [
        HistoryMessage(MessageRole(role), content)
        for role, content in zip(row.roles or (), row.contents or (), strict=True)
    ]
    return UserWork(
        user_id=user_id,
        pending=[_pending(item) for item in items(row.pending)],
        outbox=[_outbox(item) for item in items(row.outbox)],
        history=history,
        system_prompt=row.system_prompt,
        max_history_messages=row.max_history,
    )


async def accept_message(
    conn: AsyncConnection,
    *,
    profile: TelegramProfile,
    update_id: int,
    chat_id: int,
    telegram_message_id: int,
    sent_at: datetime,
    content: str,
    lease: LeaseTerms,
    default_history: int,
    max_queued: int,
    dedupe_seconds: float,
    want_work: bool = True,
) -> Accepted:
    """Store and queue a user's message unless its update was accepted within ``dedupe_seconds``.

    ``refused``: the user already has ``max_queued`` messages waiting (nothing stored). When the
    user's lease is (now) the caller's, ``work`` holds what was queued before this message, the
    stored replies not yet delivered, the settings and the history — unless ``want_work`` is
    False (the caller is already working on this user and will look again itself).
    """
    row = (
        await conn.execute(
            _ACCEPT,
            {
                **{key: value for key, value in profile.columns().items() if key != "id"},
                **lease_parameters(lease),
                "user_id": profile.id,
                "update_id": update_id,
                "chat_id": chat_id,
                "telegram_message_id": telegram_message_id,
                "sent_at": sent_at,
                "content": content,
                "content_length": len(content),
                "default_history": default_history,
                "max_queued": max_queued,
                "dedupe_seconds": float(dedupe_seconds),
                "want_work": want_work,
            },
        )
    ).one()
    if row.duplicate:
        return Accepted("duplicate", False, None, None)
    message = None
    if row.message_id is not None:
        message = PendingMessage(
            message_id=row.message_id,
            content=content,
            chat_id=chat_id,
            telegram_message_id=telegram_message_id,
            sent_at=sent_at,
            received_at=row.received_at,
        )
    work = _work(profile.id, row) if row.leased and want_work else None
    return Accepted("stored" if message is not None else "refused", bool(row.leased), message, work)


async def claim_work(
    conn: AsyncConnection, *, user_id: int, lease: LeaseTerms, default_history: int
) -> UserWork | None:
    """Take the user's lease if it is free (or already ours) and return the waiting work; else None."""
    row = (
        await conn.execute(
            _CLAIM, {**lease_parameters(lease), "user_id": user_id, "default_history": default_history}
        )
    ).one()
    return _work(user_id, row) if row.leased else None


async def finish_turn(
    conn: AsyncConnection,
    *,
    user_id: int,
    holder: uuid.UUID,
    message_ids: list[uuid.UUID],
    answer: StoredAnswer | None,
    replies: list[ReplyDraft],
) -> list[uuid.UUID] | None:
    """Consume ``message_ids`` from the inbox, store ``answer`` and queue ``replies`` in the outbox.

    Returns the outbox ids in order, or None when the lease is no longer the caller's (or the
    messages are gone, e.g. after /reset): then nothing was stored and nothing may be sent.
    """
    previews = next((r.preview_message_ids for r in replies if r.is_answer), ())
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


async def record_part(
    conn: AsyncConnection, *, user_id: int, holder: uuid.UUID, outbox_id: uuid.UUID, parts_delivered: int
) -> bool:
    """Count the parts Telegram accepted; False when the lease is no longer the caller's."""
    result = await conn.execute(
        _DELIVERED_PART,
        {"user_id": user_id, "holder": holder, "outbox_id": outbox_id, "parts_delivered": parts_delivered},
    )
    return result.first() is not None


@dataclass(frozen=True)
class Delivered:
    """After a reply was completed: whether more work waits, and whether the lease was given back."""

    more: bool
    released: bool


async def record_delivery(
    conn: AsyncConnection, *, user_id: int, holder: uuid.UUID, outbox_id: uuid.UUID, release: bool
) -> Delivered:
    """The reply is delivered (or undeliverable): drop it; release the lease if ``release`` and idle."""
    row = (
        await conn.execute(
            _DELIVERED, {"user_id": user_id, "holder": holder, "outbox_id": outbox_id, "release": release}
        )
    ).one()
    return Delivered(more=row.more, released=row.released)


async def postpone_delivery(
    conn: AsyncConnection, *, user_id: int, holder: uuid.UUID, outbox_id: uuid.UUID, retry_in_seconds: float
) -> None:
    """Telegram could not take the reply now: try again later (any process may) and free the lease."""
    await conn.execute(
        _POSTPONE,
        {"user_id": user_id, "holder": holder, "outbox_id": outbox_id, "retry_in_seconds": retry_in_seconds},
    )


async def forget_replies(conn: AsyncConnection, *, outbox_ids: list[uuid.UUID]) -> None:
    """Remove delivered replies from the outbox (several in one statement), leases untouched."""
    await conn.execute(_FORGET_REPLIES, {"outbox_ids": outbox_ids})


async def release_lease(conn: AsyncConnection, *, user_id: int, holder: uuid.UUID) -> None:
    """Give the user's lease back, if ``holder`` still has it."""
    await conn.execute(_RELEASE, {"user_id": user_id, "holder": holder})


async def record_preview(conn: AsyncConnection, *, message_id: uuid.UUID, preview_message_id: int) -> None:
    """Remember a streaming preview sent for the turn of ``message_id``, so a resumed turn reuses it."""
    await conn.execute(_RECORD_PREVIEW, {"message_id": message_id, "preview": preview_message_id})
