"""The stats queries of rolling windows (the last 24 h, 7 x 24 h, 30 x 24 h ending now).

A rolling window [start, now) starts mid-hour. It is read in two parts: the *head*, the minutes from
its start to the next full UTC hour (``kept_start``), straight from `messages` — at most an hour of
them, through the created_at index — and everything from that hour on from the hourly rollups, the
current hour also holding what is stamped ahead. Distinct users are the kept count of the window's
users (`stats_window_actives`, kind `r_<period>`) plus the head's users the kept totals do not hold.

The window before, [start - length, start), is its minutes up to the first full hour, the kept
hours (kind `p_<period>`, a closed range) and the minutes of the hour holding ``start``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from parley_core.stats.periods import DAY, HOUR, Period, Window, WindowMode, truncate, window_for
from parley_core.stats.queries import (
    LATEST_DIALOG,
    DialogFigures,
    ModelUsage,
    StatsQuery,
    SummaryFigures,
    TimelinePoint,
    TopUserFigures,
    bucket_points_sql,
    model_usage,
    timeline_parser,
    truncate_preview,
)

_LIVE = "deleted_at IS NULL"
HEAD = f"SELECT * FROM messages WHERE {_LIVE} AND created_at >= :s AND created_at < :a"


def _params(window: Window) -> dict[str, Any]:
    """Parameters of the current window and the one before (see the module docstring)."""
    kept = window.kept_start
    return {
        "s": window.start, "a": kept, "kind": window.kind,
        "ps": window.start - window.length, "pa": kept - window.length, "pe": kept - HOUR,
        "pkind": window.previous().kind,
    }  # fmt: skip


def move_windows_query(window: Window) -> StatsQuery[bool]:
    """Move the kept hours of the window and of the one before it (a write, run first).

    False when either is older than the one kept: its figures are then aggregated directly.
    """
    sql = "SELECT stats_move_window(:kind, :a, NULL) AND stats_move_window(:pkind, :pa, :pe)"
    return StatsQuery("move_windows", text(sql), _params(window), lambda rows: bool(rows[0][0]))


def _active_users(*, kind: str, kept: str, raw: str, tracked: bool) -> str:
    """Distinct users of kept hours (``kept``: a condition on hourly bucket) and raw messages.

    The raw messages' users not in the kept totals are found by one primary-key probe each (a
    scalar subquery), never by hashing every kept user of the window.
    """
    if not tracked:
        return f"""(SELECT count(*) FROM (
            SELECT user_id FROM stats_user_buckets WHERE granularity = 'h' AND {kept}
            UNION SELECT user_id FROM ({raw}) AS r) AS u)"""
    return f"""((SELECT coalesce(sum(users), 0) FROM stats_window_actives WHERE kind = :{kind})
        + (SELECT count(*) FROM (SELECT DISTINCT user_id FROM ({raw}) AS r) AS r
            WHERE coalesce((SELECT t.total FROM stats_window_totals t
                             WHERE t.kind = :{kind} AND t.user_id = r.user_id), 0) <= 0))"""


def summary_query(
    window: Window, *, tracked: bool = True
) -> StatsQuery[tuple[SummaryFigures, SummaryFigures]]:
    """Totals of the window and of the window of equal length before it, in one round trip."""
    before = (
        f"SELECT * FROM messages WHERE {_LIVE} AND ((created_at >= :ps AND created_at < :pa)"
        " OR (created_at >= :pe AND created_at < :s))"
    )
    current_hours = "bucket >= :a"
    previous_hours = "bucket >= :pa AND bucket < :pe"
    sql = f"""
    SELECT
      (SELECT coalesce(sum(users), 0) FROM stats_signups),
      (SELECT coalesce(sum(message_count), 0) FROM stats_buckets WHERE granularity = 'h' AND {current_hours})
        + (SELECT count(*) FROM ({HEAD}) AS r),
      {_active_users(kind="kind", kept=current_hours, raw=HEAD, tracked=tracked)},
      (SELECT coalesce(sum(length_sum), 0) FROM stats_buckets WHERE granularity = 'h' AND {current_hours})
        + (SELECT coalesce(sum(content_length), 0) FROM ({HEAD}) AS r),
      (SELECT coalesce(sum(users), 0) FROM stats_signups WHERE bucket < :pe)
        + (SELECT count(*) FROM users WHERE created_at >= :pe AND created_at < :s),
      (SELECT coalesce(sum(message_count), 0) FROM stats_buckets WHERE granularity = 'h' AND {previous_hours})
        + (SELECT count(*) FROM ({before}) AS r),
      {_active_users(kind="pkind", kept=previous_hours, raw=before, tracked=tracked)},
      (SELECT coalesce(sum(length_sum), 0) FROM stats_buckets WHERE granularity = 'h' AND {previous_hours})
        + (SELECT coalesce(sum(content_length), 0) FROM ({before}) AS r)
    """

    def parse(rows: Sequence[Any]) -> tuple[SummaryFigures, SummaryFigures]:
        values = [int(v) for v in rows[0]]
        return SummaryFigures(*values[:4]), SummaryFigures(*values[4:])

    return StatsQuery("summary", text(sql), _params(window), parse)


def activity_query(window: Window) -> StatsQuery[list[TimelinePoint]]:
    """One point per UTC hour (day) or day (week, month): the first from the window's start, partial;
    whole buckets; the current one, partial.

    The first point is the head plus, for daily points, the kept hours up to the next midnight; its
    users are counted through the hourly gap counts plus the head's users not active in those hours.
    """
    points = window.points
    head_sql = f"""
    SELECT CAST(:s AS timestamptz),
           (SELECT count(*) FROM ({HEAD}) AS r)
             + (SELECT coalesce(sum(message_count), 0) FROM stats_buckets
                 WHERE granularity = 'h' AND bucket >= :a AND bucket < :start),
           (SELECT coalesce(sum(users), 0) FROM stats_bucket_gaps
             WHERE granularity = 'h' AND bucket >= :a AND bucket < :start
               AND gap > round(extract(epoch FROM bucket - :a) / 3600))
             + (SELECT count(DISTINCT r.user_id) FROM ({HEAD}) AS r WHERE NOT EXISTS (
                  SELECT 1 FROM stats_user_buckets u
                   WHERE u.granularity = 'h' AND u.user_id = r.user_id
                     AND u.bucket >= :a AND u.bucket < :start))
    """
    sql = f"{head_sql} UNION ALL {bucket_points_sql(window)} ORDER BY 1"
    params = _params(window) | {
        "g": window.granularity, "unit": window.unit, "start": points[1], "last": points[-1],
        "last_start": points[-1], "last_end": window.end,
    }  # fmt: skip
    return StatsQuery("activity", text(sql), params, timeline_parser(window))


def recent_dialogs_query(
    window: Window, *, limit: int, preview_length: int | None, dialog_gap: timedelta
) -> StatsQuery[list[DialogFigures]]:
    """The latest dialog of each of the ``limit`` users whose latest message in the window is newest.

    A user's latest message does not depend on where the window starts, so the daily user-bucket
    rows find them (the n-th distinct user within (n - 1) x days + 1 rows, days stamped ahead
    included); their dialogs are found as in calendar windows.
    """
    days = "(SELECT count(*) FROM stats_buckets WHERE granularity = 'd' AND bucket >= :s_day)"
    preview = (
        f"""LEFT JOIN LATERAL (
             SELECT left(content, :preview_length + 1) AS content FROM messages
              WHERE user_id = p.user_id AND {_LIVE} AND created_at >= :s
              ORDER BY created_at DESC LIMIT 1) AS pv ON true"""
        if preview_length
        else "LEFT JOIN (SELECT NULL::text AS content) AS pv ON true"
    )
    sql = f"""
    WITH latest AS (
      SELECT user_id, last_at FROM stats_user_buckets
       WHERE granularity = 'd' AND last_at >= :s
       ORDER BY last_at DESC, user_id LIMIT (:limit - 1) * {days} + 1),
    picked AS (
      SELECT user_id FROM latest GROUP BY user_id ORDER BY max(last_at) DESC, user_id LIMIT :limit)
    SELECT p.user_id, agg.message_count, agg.first_at, agg.last_at, pv.content
      FROM picked p
     {LATEST_DIALOG}
     {preview}
     ORDER BY agg.last_at DESC, p.user_id
    """

    def parse(rows: Sequence[Any]) -> list[DialogFigures]:
        return [
            DialogFigures(int(r[0]), int(r[1]), r[2], r[3], truncate_preview(r[4], preview_length))
            for r in rows
        ]

    params = _params(window) | {
        "s_day": truncate(window.start, DAY), "start": window.start,
        "start_hour": truncate(window.start, HOUR), "limit": limit,
        "preview_length": preview_length, "dialog_gap": dialog_gap,
    }  # fmt: skip
    return StatsQuery("recent_dialogs", text(sql), params, parse)


def top_users_query(window: Window, *, limit: int, tracked: bool = True) -> StatsQuery[list[TopUserFigures]]:
    """The ``limit`` users with most messages in the window (ties: lower user id first).

    A user's count is their kept total plus their head messages, so the top is among the kept top
    ``limit`` and the head's users (a user in neither has no more than the kept top). Not
    ``tracked``: the hourly rows are aggregated instead.
    """
    head = f"""SELECT user_id, count(*) AS n, max(created_at) AS last_at, coalesce(sum(cost_usd), 0) AS cost
                 FROM ({HEAD}) AS r GROUP BY user_id"""
    if tracked:  # the kept top through the rank index, then one primary-key probe per candidate
        top = """SELECT user_id FROM stats_window_totals WHERE kind = :kind AND total > 0
                  ORDER BY total DESC, user_id LIMIT :limit"""
        kept_total = (
            "(SELECT t.total FROM stats_window_totals t WHERE t.kind = :kind AND t.user_id = c.user_id)"
        )
        kept = ""
    else:
        top = "SELECT user_id FROM kept ORDER BY total DESC, user_id LIMIT :limit"
        kept_total = "(SELECT k.total FROM kept k WHERE k.user_id = c.user_id)"
        kept = """kept AS (SELECT user_id, sum(message_count) AS total FROM stats_user_buckets
                   WHERE granularity = 'h' AND bucket >= :a GROUP BY user_id),"""
    sql = f"""
    WITH head AS ({head}),
    {kept}
    candidates AS (({top}) UNION SELECT user_id FROM head),
    ranked AS (
      SELECT c.user_id, coalesce({kept_total}, 0) + coalesce(h.n, 0) AS total FROM candidates c
        LEFT JOIN head h ON h.user_id = c.user_id
       ORDER BY 2 DESC, 1 LIMIT :limit)
    SELECT r.user_id, r.total, d.days, d.last_activity, d.cost_usd
      FROM ranked r
     CROSS JOIN LATERAL (
       SELECT count(DISTINCT day) AS days, max(last_at) AS last_activity, sum(cost) AS cost_usd FROM (
         SELECT date_trunc('day', bucket, 'UTC') AS day, last_at, cost_usd AS cost FROM stats_user_buckets
          WHERE granularity = 'h' AND user_id = r.user_id AND bucket >= :a
         UNION ALL
         SELECT date_trunc('day', h.last_at, 'UTC'), h.last_at, h.cost FROM head h
          WHERE h.user_id = r.user_id) AS parts) AS d
     ORDER BY r.total DESC, r.user_id
    """

    def parse(rows: Sequence[Any]) -> list[TopUserFigures]:
        return [TopUserFigures(int(r[0]), int(r[1]), int(r[2]), r[3], Decimal(r[4])) for r in rows]

    return StatsQuery("top_users", text(sql), _params(window) | {"limit": limit}, parse)


def llm_usage_query(window: Window) -> StatsQuery[list[ModelUsage]]:
    """Answers per model in the window, most used first: the hourly rollups plus the head's answers."""
    sql = f"""
    SELECT model, sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(fallback_count),
           sum(latency_sum_ms), sum(latency_count), sum(cost_usd), sum(cost_count), sum(stopped_count),
           sum(replaced_count)
      FROM (
        SELECT model, requests, prompt_tokens, completion_tokens, fallback_count, latency_sum_ms,
               latency_count, cost_usd, cost_count, stopped_count, replaced_count
          FROM stats_model_buckets WHERE granularity = 'h' AND bucket >= :a
        UNION ALL
        SELECT model, count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
               sum(fallback_used::int), coalesce(sum(latency_ms), 0), count(latency_ms),
               coalesce(sum(cost_usd), 0), count(cost_usd), count(*) FILTER (WHERE stopped),
               count(*) FILTER (WHERE replaced)
          FROM ({HEAD}) AS r WHERE role = 'assistant' AND model IS NOT NULL GROUP BY model) AS parts
     GROUP BY model
    HAVING sum(requests) > 0
     ORDER BY sum(requests) DESC, model
    """

    def parse(rows: Sequence[Any]) -> list[ModelUsage]:
        return [model_usage(r) for r in rows]

    return StatsQuery("llm_usage", text(sql), _params(window), parse)


@dataclass(frozen=True)
class Audience:
    """Distinct users of the last 24 h, 7 x 24 h and 30 x 24 h ending now."""

    daily: int
    weekly: int
    monthly: int


def _audience_windows(now: datetime) -> list[Window]:
    return [window_for(period, now, WindowMode.ROLLING) for period in Period]


def move_audience_query(now: datetime) -> StatsQuery[bool]:
    """Move the kept hours of the three rolling windows ending ``now`` (a write, run first)."""
    windows = _audience_windows(now)
    sql = " AND ".join(f"stats_move_window(:kind_{i}, :a_{i}, NULL)" for i in range(len(windows)))
    params: dict[str, Any] = {}
    for i, window in enumerate(windows):
        params |= {f"kind_{i}": window.kind, f"a_{i}": window.kept_start}
    return StatsQuery("move_audience", text(f"SELECT {sql}"), params, lambda rows: bool(rows[0][0]))


def audience_query(now: datetime, *, tracked: bool = True) -> StatsQuery[Audience]:
    """DAU, WAU and MAU as rolling windows ending now: each a kept count plus its head's other users."""
    columns = []
    params: dict[str, Any] = {}
    for i, window in enumerate(_audience_windows(now)):
        head = f"SELECT user_id FROM messages WHERE {_LIVE} AND created_at >= :s_{i} AND created_at < :a_{i}"
        columns.append(_active_users(kind=f"kind_{i}", kept=f"bucket >= :a_{i}", raw=head, tracked=tracked))
        params |= {f"s_{i}": window.start, f"a_{i}": window.kept_start, f"kind_{i}": window.kind}
    return StatsQuery(
        "audience", text(f"SELECT {', '.join(columns)}"), params,
        lambda rows: Audience(*(int(v) for v in rows[0])),
    )  # fmt: skip
