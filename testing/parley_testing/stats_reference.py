"""The same figures as :mod:`parley_core.stats.queries`, aggregated directly over `messages`.

This is what the predecessor computed on every request (docs/decisions.md). It is the reference
the rollups are tested against (every figure must match) and the baseline of `make bench-api`; it is
never served.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from parley_core.stats import costs, latency, retention
from parley_core.stats.costs import ModelPoint
from parley_core.stats.latency import ModelLatency
from parley_core.stats.periods import Window
from parley_core.stats.queries import (
    DialogFigures,
    ModelUsage,
    StatsQuery,
    SummaryFigures,
    TimelinePoint,
    TopUserFigures,
    model_usage,
    truncate_preview,
)
from parley_core.stats.retention import COHORT_WEEKS, CohortRetention
from parley_core.stats.rolling import Audience
from parley_core.stats.spenders import Spender, parse_spenders

# The point a message belongs to: its UTC hour or day, the window's start for the first (cut) one,
# the last point for anything stamped after it.
_POINT = (
    "greatest(:start, least(date_trunc(CASE :g WHEN 'h' THEN 'hour' ELSE 'day' END, created_at, 'UTC'),"
    " :last))"
)


def _live(window: Window, p: str = "") -> str:
    """Live messages of the window; a current one has no end (a message stamped ahead counts as now)."""
    bounds = f"created_at >= :{p}start" + ("" if window.current else f" AND created_at < :{p}end")
    return f"deleted_at IS NULL AND {bounds}"


def _params(window: Window, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}g": window.granularity, f"{prefix}start": window.start, f"{prefix}end": window.end,
        f"{prefix}last": window.points[-1],
    }  # fmt: skip


def _summary_sql(window: Window, p: str) -> str:
    users = "" if window.current else f" WHERE created_at < :{p}end"
    return f"""
      SELECT (SELECT count(*) FROM users{users}),
             count(*), count(DISTINCT user_id), coalesce(sum(content_length), 0)
        FROM messages WHERE {_live(window, p)}"""


def summary_query(window: Window, **_: Any) -> StatsQuery[tuple[SummaryFigures, SummaryFigures]]:
    """Totals of the window and the one before, straight from `messages`."""
    current, previous = _summary_sql(window, ""), _summary_sql(window.previous(), "p_")
    sql = f"SELECT * FROM ({current}) AS cur, ({previous}) AS prev"

    def parse(rows: Sequence[Any]) -> tuple[SummaryFigures, SummaryFigures]:
        values = [int(v) for v in rows[0]]
        return SummaryFigures(*values[:4]), SummaryFigures(*values[4:])

    params = _params(window) | _params(window.previous(), "p_")
    return StatsQuery("baseline_summary", text(sql), params, parse)


def activity_query(window: Window) -> StatsQuery[list[TimelinePoint]]:
    """Per-bucket counts; empty buckets are filled in by the parser."""
    sql = f"""
      SELECT {_POINT} AS point, count(*), count(DISTINCT user_id)
        FROM messages WHERE {_live(window)} GROUP BY 1"""

    def parse(rows: Sequence[Any]) -> list[TimelinePoint]:
        found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        points = window.points
        return [
            TimelinePoint(b, *found.get(b, (0, 0)), partial=window.partial(i, len(points)))
            for i, b in enumerate(points)
        ]

    return StatsQuery("baseline_activity", text(sql), _params(window), parse)


def recent_dialogs_query(
    window: Window, *, limit: int, preview_length: int | None, dialog_gap: timedelta
) -> StatsQuery[list[DialogFigures]]:
    """Users by their latest message in the window, with their latest dialog: the messages since their
    last pause longer than ``dialog_gap`` (or the window's start), and their last text."""
    sql = f"""
      WITH live AS (
        SELECT user_id, created_at, content,
               created_at - lag(created_at) OVER (PARTITION BY user_id ORDER BY created_at) AS pause
          FROM messages WHERE {_live(window)}),
      started AS (
        SELECT user_id, max(created_at) AS first_at FROM live
         WHERE pause IS NULL OR pause > :dialog_gap GROUP BY user_id),
      d AS (SELECT l.user_id, count(*) AS n, s.first_at, max(l.created_at) AS last_at
              FROM live l JOIN started s ON s.user_id = l.user_id AND l.created_at >= s.first_at
             GROUP BY l.user_id, s.first_at ORDER BY last_at DESC, l.user_id LIMIT :limit)
      SELECT d.user_id, d.n, d.first_at, d.last_at,
             (SELECT content FROM messages WHERE user_id = d.user_id AND {_live(window)}
               ORDER BY created_at DESC LIMIT 1)
        FROM d ORDER BY d.last_at DESC, d.user_id"""

    def parse(rows: Sequence[Any]) -> list[DialogFigures]:
        return [
            DialogFigures(int(r[0]), int(r[1]), r[2], r[3], truncate_preview(r[4], preview_length))
            for r in rows
        ]

    params = _params(window) | {"limit": limit, "dialog_gap": dialog_gap}
    return StatsQuery("baseline_recent_dialogs", text(sql), params, parse)


def top_users_query(window: Window, *, limit: int, **_: Any) -> StatsQuery[list[TopUserFigures]]:
    """Users by message count in the window."""
    sql = f"""
      SELECT user_id, count(*) AS total, count(DISTINCT date_trunc('day', created_at, 'UTC')),
             max(created_at), coalesce(sum(cost_usd), 0)
        FROM messages WHERE {_live(window)}
       GROUP BY user_id ORDER BY total DESC, user_id LIMIT :limit"""

    def parse(rows: Sequence[Any]) -> list[TopUserFigures]:
        return [TopUserFigures(int(r[0]), int(r[1]), int(r[2]), r[3], Decimal(r[4])) for r in rows]

    return StatsQuery("baseline_top_users", text(sql), _params(window) | {"limit": limit}, parse)


def llm_usage_query(window: Window) -> StatsQuery[list[ModelUsage]]:
    """Assistant answers per model."""
    sql = f"""
      SELECT model, count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
             sum(fallback_used::int), coalesce(sum(latency_ms), 0), count(latency_ms),
             coalesce(sum(cost_usd), 0), count(cost_usd), count(*) FILTER (WHERE stopped),
             count(*) FILTER (WHERE replaced)
        FROM messages WHERE {_live(window)} AND role = 'assistant' AND model IS NOT NULL
       GROUP BY model ORDER BY count(*) DESC, model"""

    def parse(rows: Sequence[Any]) -> list[ModelUsage]:
        return [model_usage(r) for r in rows]

    return StatsQuery("baseline_llm_usage", text(sql), _params(window), parse)


def audience_query(now: datetime, **_: Any) -> StatsQuery[Audience]:
    """Distinct users with messages from 24 h, 7 x 24 h and 30 x 24 h before ``now`` on."""
    since = "CAST(:now AS timestamptz) - interval '{} days'"
    columns = ", ".join(
        f"count(DISTINCT user_id) FILTER (WHERE created_at >= {since.format(days)})" for days in (1, 7, 30)
    )
    sql = f"SELECT {columns} FROM messages WHERE deleted_at IS NULL"
    return StatsQuery(
        "baseline_audience", text(sql), {"now": now}, lambda rows: Audience(*(int(v) for v in rows[0]))
    )


def retention_query(now: datetime, weeks: int = COHORT_WEEKS) -> StatsQuery[list[CohortRetention]]:
    """Per signup week and day N: users, users whose N-th day has ended, and those with a live
    message on it — counted over `users` and `messages` directly."""
    sql = f"""
    WITH {retention.WEEKS_AND_DAYS},
    people AS (SELECT id, created_at, date_trunc('day', created_at, 'UTC') AS first_day FROM users)
    SELECT w.start,
           (SELECT count(*) FROM people p WHERE p.created_at >= w.start AND p.created_at < w.stop),
           d.n,
           count(p.id),
           count(p.id) FILTER (WHERE EXISTS (
             SELECT 1 FROM messages m
              WHERE m.user_id = p.id AND m.deleted_at IS NULL
                AND m.created_at >= p.first_day + d.n * interval '24 hours'
                AND m.created_at < p.first_day + (d.n + 1) * interval '24 hours'))
      FROM weeks w CROSS JOIN days d
      LEFT JOIN people p ON p.created_at >= w.start AND p.created_at < w.stop
                        AND p.first_day < d.ended
     GROUP BY w.start, w.stop, d.n
     ORDER BY w.start, d.n
    """
    return StatsQuery("baseline_retention", text(sql), retention.params(now, weeks), retention.parse_cohorts)


def cost_timeline_query(window: Window) -> StatsQuery[list[ModelPoint]]:
    """Answers, tokens, fallbacks and cost per timeline point and model, over `messages`."""
    sql = f"""
      SELECT {_POINT} AS point, model, count(*), sum(coalesce(prompt_tokens, 0)),
             sum(coalesce(completion_tokens, 0)), count(*) FILTER (WHERE fallback_used),
             coalesce(sum(cost_usd), 0)
        FROM messages WHERE {_live(window)} AND role = 'assistant' AND model IS NOT NULL
       GROUP BY 1, 2"""
    return StatsQuery("baseline_cost_timeline", text(sql), _params(window), costs.points_parser(window))


def latency_query(window: Window) -> StatsQuery[list[ModelLatency]]:
    """Exact nearest-rank percentiles per model over `messages`, reported as the upper end of the
    latency bin holding each."""
    columns = ", ".join(
        f"stats_latency_bin(percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms))"
        for q in latency.PERCENTILES
    )
    sql = f"""
      SELECT model, count(*), {columns}
        FROM messages
       WHERE {_live(window)} AND role = 'assistant' AND model IS NOT NULL AND latency_ms IS NOT NULL
       GROUP BY model ORDER BY model"""

    def parse(rows: Sequence[Any]) -> list[ModelLatency]:
        return [ModelLatency(r[0], int(r[1]), *(latency.bin_upper_ms(int(b)) for b in r[2:])) for r in rows]

    return StatsQuery("baseline_latency", text(sql), _params(window), parse)


def top_spenders_query(window: Window, *, limit: int, **_: Any) -> StatsQuery[list[Spender]]:
    """Users by the cost of their answers in the window, then their messages, over `messages`."""
    sql = f"""
      SELECT user_id, sum(cost_usd), count(*) FROM messages WHERE {_live(window)}
       GROUP BY user_id HAVING coalesce(sum(cost_usd), 0) > 0
       ORDER BY 2 DESC, 1 LIMIT :limit"""
    return StatsQuery("baseline_top_spenders", text(sql), _params(window) | {"limit": limit}, parse_spenders)
