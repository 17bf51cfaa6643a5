"""Bot processes and their heartbeats: how a process finds work that nobody alive is doing.

Each bot process has a ``bot_instances`` row it refreshes every few seconds. A user's lease
(``users.lease_holder``) names such a row; when the row stops being refreshed (kill -9, OOM, a
lost node), the lease is free for any other process, and the dead process's queued messages and
unsent replies are picked up (:func:`heartbeat_and_find_work`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.repositories.turns.lease import LEASE_IS_FREE, lease_parameters
from parley_core.repositories.turns.records import LeaseTerms

_HEARTBEAT_AND_FIND = text(
    f"""
WITH beat AS (
    INSERT INTO bot_instances (id, mode, hostname) VALUES (CAST(:holder AS uuid), :mode, :hostname)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
)
SELECT u.id FROM users u
WHERE u.id IN (SELECT user_id FROM bot_inbox
               UNION SELECT user_id FROM bot_outbox WHERE next_attempt_at <= now())
  AND {LEASE_IS_FREE}
ORDER BY u.id
LIMIT CAST(:limit AS integer)
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)

_FORGET_OTHERS = text("DELETE FROM bot_instances WHERE id <> CAST(:holder AS uuid)")

_STOP = text(
    """
WITH released AS (
    UPDATE users SET lease_holder = NULL WHERE lease_holder = CAST(:holder AS uuid)
)
DELETE FROM bot_instances WHERE id = CAST(:holder AS uuid)
"""
)

_PRUNE = text(
    """
WITH updates AS (
    DELETE FROM telegram_updates
    WHERE seen_at < now() - make_interval(secs => CAST(:dedupe_seconds AS double precision))
    RETURNING 1
),
instances AS (
    DELETE FROM bot_instances WHERE heartbeat_at < now() - interval '1 day' RETURNING 1
)
SELECT (SELECT count(*) FROM updates) AS updates, (SELECT count(*) FROM instances) AS instances
"""
)


async def heartbeat_and_find_work(
    conn: AsyncConnection, *, lease: LeaseTerms, mode: str, hostname: str, limit: int
) -> list[int]:
    """Refresh this process's heartbeat; return users with waiting work whose lease it could take."""
    rows = await conn.execute(
        _HEARTBEAT_AND_FIND,
        {**lease_parameters(lease), "mode": mode, "hostname": hostname[:253], "limit": limit},
    )
    return [row.id for row in rows]


async def forget_others(conn: AsyncConnection, *, holder: uuid.UUID) -> int:
    """Declare every other process dead (polling mode: exactly one process polls); returns how many."""
    result = await conn.execute(_FORGET_OTHERS, {"holder": holder})
    return result.rowcount


async def stop(conn: AsyncConnection, *, holder: uuid.UUID) -> None:
    """A graceful stop: give back every lease of this process and remove its row."""
    await conn.execute(_STOP, {"holder": holder})


async def prune(conn: AsyncConnection, *, dedupe_seconds: float) -> tuple[int, int]:
    """Forget update ids older than the de-duplication window and processes gone for a day."""
    row = (await conn.execute(_PRUNE, {"dedupe_seconds": float(dedupe_seconds)})).one()
    return int(row.updates), int(row.instances)
