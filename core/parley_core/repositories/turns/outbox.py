"""Counting what Telegram accepted of a stored reply, postponing it, forgetting it once sent."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.repositories.turns.records import Delivered

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


async def record_part(
    conn: AsyncConnection, *, user_id: int, holder: uuid.UUID, outbox_id: uuid.UUID, parts_delivered: int
) -> bool:
    """Count the parts Telegram accepted; False when the lease is no longer the caller's."""
    result = await conn.execute(
        _DELIVERED_PART,
        {"user_id": user_id, "holder": holder, "outbox_id": outbox_id, "parts_delivered": parts_delivered},
    )
    return result.first() is not None


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
