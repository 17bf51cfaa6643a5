"""Accepting a message and claiming a user's queued work (with the history the answer needs)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import MessageRole
from parley_core.repositories import budgets
from parley_core.repositories.turns.lease import LEASE_IS_FREE, lease_parameters
from parley_core.repositories.turns.records import (
    Accepted,
    Attachment,
    HistoryMessage,
    LeaseTerms,
    OutboxItem,
    PendingMessage,
    UserWork,
)
from parley_core.repositories.users import TelegramProfile

# The user's queued messages, stored replies, settings and recent answered history — for the lease
# holder only (`{gate}` is false otherwise, and PostgreSQL then skips the whole subquery).
_WORK = """
SELECT prefs.max_history, prefs.system_prompt, prefs.model, prefs.language, pending.items AS pending,
       outbox.items AS outbox, history.roles, history.contents, history.stamps, summary.summary,
       summary.summary_until,
       spent.*, {override_columns}
FROM (
    SELECT coalesce(max(s.max_history_messages), CAST(:default_history AS integer)) AS max_history,
           max(s.system_prompt) AS system_prompt, max(s.model) AS model,
           -- /language's choice, else the app language of this message, else of the user's last one
           coalesce(max(s.language), CAST(:app_language AS varchar),
                    (SELECT u.language_code FROM users u WHERE u.id = CAST(:user_id AS bigint))) AS language
    FROM user_settings s WHERE s.user_id = CAST(:user_id AS bigint)
) prefs
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object(
               'message_id', b.message_id, 'content', m.content, 'chat_id', b.chat_id,
               'telegram_message_id', b.telegram_message_id, 'sent_at', b.sent_at,
               'received_at', b.received_at, 'preview_message_ids', b.preview_message_ids,
               'attachment', m.attachment)
             ORDER BY b.received_at, m.created_at), '[]') AS items
    FROM bot_inbox b
    CROSS JOIN LATERAL (  -- from the (small) queue to each message, never a scan of the history
        SELECT x.content, x.attachment, x.created_at, x.deleted_at FROM messages x WHERE x.id = b.message_id
        OFFSET 0
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
    SELECT max(hs.content) AS summary, max(hs.covers_until) AS summary_until
    FROM history_summaries hs WHERE hs.user_id = CAST(:user_id AS bigint)
) summary
CROSS JOIN LATERAL (
    SELECT array_agg(h.role ORDER BY h.created_at) AS roles,
           array_agg(h.content ORDER BY h.created_at) AS contents,
           array_agg(h.created_at ORDER BY h.created_at) AS stamps
    FROM (
        SELECT m.role, m.content, m.created_at FROM messages m
        WHERE m.user_id = CAST(:user_id AS bigint) AND m.deleted_at IS NULL AND NOT m.unanswered
          AND NOT m.replaced AND m.content_length > 0  -- /retry's old answers; a stop before any text
          AND NOT EXISTS (SELECT 1 FROM bot_inbox b WHERE b.message_id = m.id)
          AND m.created_at > coalesce(summary.summary_until, '-infinity')  -- the rest is summarised
        ORDER BY m.created_at DESC
        LIMIT greatest(prefs.max_history, 1)  -- one more than the prompt takes: is there more?
    ) h
) history
CROSS JOIN LATERAL ({spending}) spent
LEFT JOIN user_budgets ub ON ub.user_id = CAST(:user_id AS bigint)
WHERE {gate}
"""


def _work_sql(*, gate: str) -> str:
    return _WORK.format(gate=gate, spending=budgets.SPENDING, override_columns=budgets.OVERRIDE_COLUMNS)


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
    INSERT INTO messages (user_id, role, content, content_length, telegram_update_id, attachment)
    SELECT CAST(:user_id AS bigint), 'user', CAST(:content AS text), CAST(:content_length AS integer),
           CAST(:update_id AS bigint), CAST(:attachment AS jsonb)
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
    {_work_sql(gate="CAST(:want_work AS boolean) AND coalesce((SELECT leased FROM person), false)")}
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
LEFT JOIN LATERAL ({_work_sql(gate="EXISTS (SELECT 1 FROM lease)")}) work ON true
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)


def _pending(item: dict[str, Any]) -> PendingMessage:
    return PendingMessage(
        message_id=uuid.UUID(item["message_id"]),
        content=item["content"],
        chat_id=int(item["chat_id"]),
        telegram_message_id=int(item["telegram_message_id"]),
        sent_at=datetime.fromisoformat(item["sent_at"]),
        received_at=datetime.fromisoformat(item["received_at"]),
        preview_message_ids=tuple(item["preview_message_ids"] or ()),
        attachment=Attachment.from_json(item.get("attachment")),
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
        HistoryMessage(MessageRole(role), content, created_at)
        for role, content, created_at in zip(
            row.roles or (), row.contents or (), row.stamps or (), strict=True
        )
    ]
    window = max(row.max_history - 1, 0)
    overflow = len(history) > window  # more unsummarised history than the prompt takes
    history = history[max(len(history) - window, 0) :] if window else []
    return UserWork(
        user_id=user_id,
        pending=[_pending(item) for item in items(row.pending)],
        outbox=[_outbox(item) for item in items(row.outbox)],
        history=history,
        system_prompt=row.system_prompt,
        max_history_messages=row.max_history,
        model=row.model,
        language=row.language,
        summary=row.summary,
        summary_until=row.summary_until,
        history_overflow=overflow,
        budget_override=budgets.override_of(row),
        spending=budgets.spending_of(row),
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
    attachment: Attachment | None = None,
    default_history: int,
    max_queued: int,
    dedupe_seconds: float,
    want_work: bool = True,
    today: date | None = None,
) -> Accepted:
    """Store and queue a user's message unless its update was accepted within ``dedupe_seconds``.

    ``refused``: the user already has ``max_queued`` messages waiting (nothing stored). When the
    user's lease is (now) the caller's, ``work`` holds what was queued before this message, the
    stored replies not yet delivered, the settings and the history — unless ``want_work`` is
    False (the caller is already working on this user and will look again itself). ``today``:
    the UTC day whose (and whose month's) spending the work reports; the current one by default.
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
                "attachment": None if attachment is None else json.dumps(attachment.as_json()),
                "default_history": default_history,
                "app_language": profile.language_code,
                "max_queued": max_queued,
                "dedupe_seconds": float(dedupe_seconds),
                "want_work": want_work,
                **budgets.period_parameters(today or _today()),
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
            attachment=attachment,
        )
    work = _work(profile.id, row) if row.leased and want_work else None
    return Accepted("stored" if message is not None else "refused", bool(row.leased), message, work)


async def claim_work(
    conn: AsyncConnection,
    *,
    user_id: int,
    lease: LeaseTerms,
    default_history: int,
    today: date | None = None,
) -> UserWork | None:
    """Take the user's lease if it is free (or already ours) and return the waiting work; else None."""
    row = (
        await conn.execute(
            _CLAIM,
            {
                **lease_parameters(lease),
                "user_id": user_id,
                "default_history": default_history,
                "app_language": None,
                **budgets.period_parameters(today or _today()),
            },
        )
    ).one()
    return _work(user_id, row) if row.leased else None


def _today() -> date:
    return datetime.now(UTC).date()
