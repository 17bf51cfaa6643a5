"""Budgets in the database: the per-day usage ledger and admins' per-user overrides.

The ledger (``usage_counters``) is written by the statement that stores a turn's answer
(:func:`record_usage`) and read by the statement that claims a user's work (:data:`SPENDING`,
:data:`OVERRIDE_COLUMNS`), so budgets cost no database round trip of their own. A user's turns
run one at a time under the user's lease, whichever replica holds it, so the spending a turn
reads is final: only the turn itself can add to it before it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.budgets import Limits, Override, Spending


def spending_of_user(user: str) -> str:
    """A lateral subquery: the spending of the day and of the month (at most 31 ledger rows) of the
    user ``user`` (an SQL expression) names."""
    return f"""
SELECT coalesce(sum(c.tokens) FILTER (WHERE c.day = CAST(:today AS date)), 0) AS day_tokens,
       coalesce(sum(c.cost_usd) FILTER (WHERE c.day = CAST(:today AS date)), 0) AS day_usd,
       coalesce(sum(c.tokens), 0) AS month_tokens,
       coalesce(sum(c.cost_usd), 0) AS month_usd
FROM usage_counters c
WHERE c.user_id = {user} AND c.day >= CAST(:month_start AS date)
"""  # noqa: S608  (``user`` is an SQL expression of ours; values are bound parameters)


# The spending of the user ``:user_id``.
SPENDING = spending_of_user("CAST(:user_id AS bigint)")

# The override's columns, from ``user_budgets ub`` left-joined on the user.
OVERRIDE_COLUMNS = """
ub.user_id IS NOT NULL AS b_present, ub.tokens_per_day AS b_tokens_per_day,
ub.tokens_per_month AS b_tokens_per_month, ub.usd_per_day AS b_usd_per_day,
ub.usd_per_month AS b_usd_per_month, coalesce(ub.exempt, false) AS b_exempt,
ub.updated_by AS b_updated_by, ub.updated_at AS b_updated_at
"""


def record_usage(*, when: str) -> str:
    """A CTE body for the turn's statement: add what the turn consumed to the user's day, if ``when``."""
    return f"""
INSERT INTO usage_counters AS c (user_id, day, tokens, cost_usd, turns)
SELECT CAST(:user_id AS bigint), CAST(:usage_day AS date), CAST(:usage_tokens AS bigint),
       CAST(:usage_usd AS numeric), 1
WHERE CAST(:record_usage AS boolean) AND ({when})
ON CONFLICT (user_id, day) DO UPDATE SET
    tokens = c.tokens + EXCLUDED.tokens, cost_usd = c.cost_usd + EXCLUDED.cost_usd, turns = c.turns + 1
"""


_READ = text(
    f"""
SELECT spent.*, {OVERRIDE_COLUMNS}
FROM ({SPENDING}) spent
LEFT JOIN user_budgets ub ON ub.user_id = CAST(:user_id AS bigint)
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)

_UPSERT = text(
    """
INSERT INTO user_budgets AS b (user_id, tokens_per_day, tokens_per_month, usd_per_day, usd_per_month,
                               exempt, updated_by)
VALUES (CAST(:user_id AS bigint), CAST(:tokens_per_day AS bigint), CAST(:tokens_per_month AS bigint),
        CAST(:usd_per_day AS numeric), CAST(:usd_per_month AS numeric), CAST(:exempt AS boolean),
        CAST(:updated_by AS varchar))
ON CONFLICT (user_id) DO UPDATE SET
    tokens_per_day = EXCLUDED.tokens_per_day, tokens_per_month = EXCLUDED.tokens_per_month,
    usd_per_day = EXCLUDED.usd_per_day, usd_per_month = EXCLUDED.usd_per_month,
    exempt = EXCLUDED.exempt, updated_by = EXCLUDED.updated_by, updated_at = now()
"""
)

_DELETE = text("DELETE FROM user_budgets WHERE user_id = CAST(:user_id AS bigint)")

_LIST = text(
    f"""
SELECT ub.user_id, {OVERRIDE_COLUMNS}
FROM user_budgets ub
WHERE ub.user_id > CAST(:after AS bigint)
ORDER BY ub.user_id
LIMIT CAST(:limit AS integer)
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)


@dataclass(frozen=True)
class StoredBudget:
    """A user's override (None: the defaults apply) and spending of the current day and month."""

    override: Override | None
    spending: Spending


def spending_of(row: Any) -> Spending:
    """The :data:`SPENDING` columns of a row."""
    return Spending(
        day_tokens=int(row.day_tokens),
        day_usd=Decimal(row.day_usd),
        month_tokens=int(row.month_tokens),
        month_usd=Decimal(row.month_usd),
    )


def override_of(row: Any) -> Override | None:
    """The :data:`OVERRIDE_COLUMNS` of a row, or None when the user has no override."""
    if not row.b_present:
        return None
    return Override(
        limits=Limits(
            tokens_per_day=row.b_tokens_per_day,
            tokens_per_month=row.b_tokens_per_month,
            usd_per_day=row.b_usd_per_day,
            usd_per_month=row.b_usd_per_month,
        ),
        exempt=bool(row.b_exempt),
        updated_by=row.b_updated_by,
        updated_at=row.b_updated_at,
    )


def period_parameters(today: date) -> dict[str, date]:
    """Parameters of :data:`SPENDING` for the UTC day ``today``."""
    return {"today": today, "month_start": today.replace(day=1)}


async def read_budget(conn: AsyncConnection, *, user_id: int, today: date) -> StoredBudget:
    """The user's override and spending of ``today``'s day and month, in one statement."""
    row = (await conn.execute(_READ, {"user_id": user_id, **period_parameters(today)})).one()
    return StoredBudget(override=override_of(row), spending=spending_of(row))


_READ_MANY = text(
    f"""
SELECT u.user_id, spent.*, {OVERRIDE_COLUMNS}
FROM unnest(CAST(:user_ids AS bigint[])) AS u(user_id)
CROSS JOIN LATERAL ({spending_of_user("u.user_id")}) spent
LEFT JOIN user_budgets ub ON ub.user_id = u.user_id
"""  # noqa: S608  (constant SQL fragments; values are bound parameters)
)


async def read_budgets(conn: AsyncConnection, *, user_ids: list[int], today: date) -> dict[int, StoredBudget]:
    """:func:`read_budget` of several users, in one statement."""
    rows = await conn.execute(_READ_MANY, {"user_ids": user_ids, **period_parameters(today)})
    return {
        int(row.user_id): StoredBudget(override=override_of(row), spending=spending_of(row)) for row in rows
    }


async def set_override(conn: AsyncConnection, *, user_id: int, override: Override, updated_by: str) -> None:
    """Store the user's override (replacing any earlier one)."""
    limits = override.limits
    await conn.execute(
        _UPSERT,
        {
            "user_id": user_id,
            "tokens_per_day": limits.tokens_per_day,
            "tokens_per_month": limits.tokens_per_month,
            "usd_per_day": limits.usd_per_day,
            "usd_per_month": limits.usd_per_month,
            "exempt": override.exempt,
            "updated_by": updated_by[:128],
        },
    )


async def clear_override(conn: AsyncConnection, *, user_id: int) -> bool:
    """Remove the user's override (the defaults apply again); whether there was one."""
    result = await conn.execute(_DELETE, {"user_id": user_id})
    return bool(result.rowcount)


async def list_overrides(conn: AsyncConnection, *, after: int, limit: int) -> list[tuple[int, Override]]:
    """Overrides in user id order, from the first user id greater than ``after`` (keyset paging)."""
    rows = (await conn.execute(_LIST, {"after": after, "limit": limit})).all()
    listed = []
    for row in rows:
        override = override_of(row)
        if override is not None:
            listed.append((int(row.user_id), override))
    return listed
