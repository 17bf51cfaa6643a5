"""A user's lease: which bot process may work on the user's messages, and giving it back."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.repositories.turns.records import LeaseTerms

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


_RELEASE = text(
    """
UPDATE users SET lease_holder = NULL
WHERE id = CAST(:user_id AS bigint) AND lease_holder = CAST(:holder AS uuid)
"""
)


def lease_parameters(terms: LeaseTerms) -> dict[str, Any]:
    """The bind parameters LEASE_IS_FREE reads."""
    return {"holder": terms.holder, "stale_seconds": float(terms.stale_seconds), "take_over": terms.take_over}


async def release_lease(conn: AsyncConnection, *, user_id: int, holder: uuid.UUID) -> None:
    """Give the user's lease back, if ``holder`` still has it."""
    await conn.execute(_RELEASE, {"user_id": user_id, "holder": holder})
