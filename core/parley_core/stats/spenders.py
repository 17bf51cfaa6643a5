"""Top spenders: the users whose answers cost most in a current window (rolling or calendar).

The kept window's per-user costs (`stats_window_totals.cost`, ranked by
`ix_stats_window_totals_cost`) give the kept top; a rolling window's minutes before its first full
hour are read from `messages`, and their users join the candidates, as for top users. When the kept
window is older than the one asked for (never for the dashboard's windows), the hourly user rows
are summed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from parley_core.stats.costs import params
from parley_core.stats.periods import Window
from parley_core.stats.queries import StatsQuery


@dataclass(frozen=True)
class Spender:
    """A user's answers' cost and their messages in the window."""

    user_id: int
    cost_usd: Decimal
    total_messages: int


def parse_spenders(rows: Sequence[Any]) -> list[Spender]:
    """Rows (user, cost, messages), most spent first."""
    return [Spender(int(r[0]), Decimal(r[1]), int(r[2])) for r in rows]


def top_spenders_query(window: Window, *, limit: int, tracked: bool = True) -> StatsQuery[list[Spender]]:
    """The ``limit`` users with the highest cost in the window (ties: lower user id); none at zero."""
    if tracked:  # the kept top through the cost index, then one primary-key probe per candidate
        kept = ""
        top = """SELECT user_id FROM stats_window_totals WHERE kind = :kind AND cost > 0
                  ORDER BY cost DESC, user_id LIMIT :limit"""
        probe = """(SELECT t.{column} FROM stats_window_totals t
                     WHERE t.kind = :kind AND t.user_id = c.user_id)"""
    else:
        kept = """kept AS (SELECT user_id, sum(message_count) AS total, sum(cost_usd) AS cost
                     FROM stats_user_buckets WHERE granularity = 'h' AND bucket >= :a GROUP BY user_id),"""
        top = "SELECT user_id FROM kept WHERE cost > 0 ORDER BY cost DESC, user_id LIMIT :limit"
        probe = "(SELECT k.{column} FROM kept k WHERE k.user_id = c.user_id)"
    sql = f"""
    WITH head AS (
      SELECT user_id, count(*) AS n, coalesce(sum(cost_usd), 0) AS cost FROM messages
       WHERE deleted_at IS NULL AND created_at >= :start AND created_at < :a GROUP BY user_id),
    {kept}
    candidates AS (({top}) UNION SELECT user_id FROM head WHERE cost > 0)
    SELECT c.user_id, coalesce({probe.format(column="cost")}, 0) + coalesce(h.cost, 0) AS cost,
           coalesce({probe.format(column="total")}, 0) + coalesce(h.n, 0) AS total
      FROM candidates c
      LEFT JOIN head h ON h.user_id = c.user_id
     ORDER BY 2 DESC, 1 LIMIT :limit
    """
    return StatsQuery(
        "top_spenders", text(sql), params(window) | {"kind": window.kind, "limit": limit}, parse_spenders
    )
