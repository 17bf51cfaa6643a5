"""Retention by signup week: of the users who first appeared in a UTC week, how many came back.

A user's first day is the UTC day of ``users.created_at`` (when the bot first stored them). Day N
retention counts the users with a live message on the N-th UTC day after their first day, among
those whose N-th day has ended (a day still under way would only grow). Weeks start on Monday
00:00 UTC; the current week holds every user created from its start on, so a user stamped ahead of
now counts as now, and has no ended day yet.

Read from `stats_retention` (per first day and later day) and the hourly sign-ups: a few hundred
rows whatever the number of users or messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from parley_core.stats.periods import DAY, truncate
from parley_core.stats.queries import StatsQuery

RETENTION_DAYS = (1, 7, 30)
COHORT_WEEKS = 8
WEEK = timedelta(days=7)

# The signup weeks [start, stop), the current one open-ended, and the retention days asked for.
WEEKS_AND_DAYS = """weeks AS (
      SELECT w AS start,
             CASE WHEN w = :current THEN 'infinity'::timestamptz ELSE w + interval '168 hours' END AS stop
        FROM generate_series(CAST(:first AS timestamptz), CAST(:current AS timestamptz),
                             interval '168 hours') AS w),
    days AS (  -- day n of users who first came before `ended` is over
      SELECT n, CAST(:today AS timestamptz) - n * interval '24 hours' AS ended
        FROM unnest(CAST(:days AS int[])) AS n)"""


@dataclass(frozen=True)
class DayRetention:
    """Day ``day`` of a cohort: its users whose day has ended, and how many of them came back."""

    day: int
    eligible: int
    retained: int


@dataclass(frozen=True)
class CohortRetention:
    """The users who first appeared in the week from ``start``, and their return on each day."""

    start: datetime
    users: int
    days: tuple[DayRetention, ...]


def cohort_weeks(now: datetime, weeks: int = COHORT_WEEKS) -> list[datetime]:
    """Monday 00:00 UTC of the last ``weeks`` weeks, the current one last."""
    today = truncate(now, DAY)
    current = today - timedelta(days=today.weekday())
    return [current - WEEK * i for i in reversed(range(weeks))]


def parse_cohorts(rows: Sequence[Any]) -> list[CohortRetention]:
    """Rows of (week start, users, day, eligible, retained), ordered by week and day."""
    cohorts: dict[datetime, tuple[int, list[DayRetention]]] = {}
    for start, users, day, eligible, retained in rows:
        cohorts.setdefault(start, (int(users), []))[1].append(
            DayRetention(day=int(day), eligible=int(eligible), retained=int(retained))
        )
    return [CohortRetention(start, users, tuple(days)) for start, (users, days) in cohorts.items()]


def params(now: datetime, weeks: int) -> dict[str, Any]:
    """The weeks and the start of today (days before it have ended)."""
    starts = cohort_weeks(now, weeks)
    today = truncate(now, DAY)
    return {"first": starts[0], "current": starts[-1], "today": today, "days": list(RETENTION_DAYS)}


def retention_query(now: datetime, weeks: int = COHORT_WEEKS) -> StatsQuery[list[CohortRetention]]:
    """Retention D1/D7/D30 of the last ``weeks`` signup weeks."""
    sql = f"""
    WITH {WEEKS_AND_DAYS}
    SELECT w.start,
           (SELECT coalesce(sum(s.users), 0) FROM stats_signups s
             WHERE s.bucket >= w.start AND s.bucket < w.stop) AS users,
           d.n,
           (SELECT coalesce(sum(s.users), 0) FROM stats_signups s
             WHERE s.bucket >= w.start AND s.bucket < least(w.stop, d.ended))
             AS eligible,
           (SELECT coalesce(sum(r.users), 0) FROM stats_retention r
             WHERE r.day_offset = d.n AND r.cohort >= w.start
               AND r.cohort < least(w.stop, d.ended)) AS retained
      FROM weeks w CROSS JOIN days d
     ORDER BY w.start, d.n
    """
    return StatsQuery("retention", text(sql), params(now, weeks), parse_cohorts)
