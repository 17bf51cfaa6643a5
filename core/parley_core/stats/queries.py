"""The stats queries of calendar windows over the rollup tables, as named statements the API times
and explains (rolling windows: :mod:`parley_core.stats.rolling`).

Each builder returns a :class:`StatsQuery`: the SQL, its parameters and a parser of its rows, so
the caller can time it, log its plan (EXPLAIN ANALYZE) and run it without knowing the SQL. Every
query reads rows proportional to the number of buckets (24, 7 or 30) or to the page size, never
to the number of messages or users — except when asked for a window older than the kept one (a
request whose clock lags another's), which aggregates the user-bucket rows directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import TextClause, text

from parley_core.stats.periods import HOUR, Window, truncate

T = TypeVar("T")


@dataclass(frozen=True)
class StatsQuery(Generic[T]):
    """One named statement with its parameters and how to read its result."""

    name: str
    statement: TextClause
    params: dict[str, Any]
    parse: Callable[[Sequence[Any]], T]


@dataclass(frozen=True)
class SummaryFigures:
    """Totals of one window."""

    total_users: int
    total_messages: int
    active_dialogs: int
    length_sum: int


@dataclass(frozen=True)
class TimelinePoint:
    """One bucket of the activity timeline."""

    timestamp: datetime
    message_count: int
    active_users: int
    partial: bool = False  # less than a whole hour or day: the window's first cut one, or the current


@dataclass(frozen=True)
class DialogFigures:
    """One user's messages in the window."""

    user_id: int
    message_count: int
    first_message_at: datetime
    last_message_at: datetime
    preview: str | None


@dataclass(frozen=True)
class TopUserFigures:
    """A user ranked by messages in the window."""

    user_id: int
    total_messages: int
    dialog_count: int
    last_activity: datetime
    cost_usd: Decimal  # of the user's answers in the window whose cost is known


@dataclass(frozen=True)
class ModelUsage:
    """LLM answers of one model in the window."""

    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    fallback_count: int
    latency_sum_ms: int
    latency_count: int
    cost_usd: Decimal
    cost_count: int  # answers whose cost is known
    stopped_count: int  # answers the user stopped
    replaced_count: int  # answers the user asked again for (/retry)


def model_usage(row: Sequence[Any]) -> ModelUsage:
    """A ModelUsage from a row of model, requests, tokens, fallbacks, latency and cost columns."""
    model, requests, prompt, completion, fallbacks, latency_sum, latency_count, cost, cost_count, *flags = row
    stopped, replaced = flags
    return ModelUsage(
        model=str(model),
        requests=int(requests),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        fallback_count=int(fallbacks),
        latency_sum_ms=int(latency_sum),
        latency_count=int(latency_count),
        cost_usd=Decimal(cost),
        cost_count=int(cost_count),
        stopped_count=int(stopped),
        replaced_count=int(replaced),
    )


def _window_params(window: Window, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}g": window.granularity,
        f"{prefix}start": window.start,
        f"{prefix}end": window.end,
        f"{prefix}unit_s": window.unit.total_seconds(),
        f"{prefix}kind": window.kind,
    }


def in_window(window: Window, column: str = "bucket", prefix: str = "") -> str:
    """SQL condition: ``column`` lies in the window; a current window has no end (stamped ahead counts)."""
    condition = f"{column} >= :{prefix}start"
    return condition if window.current else f"{condition} AND {column} < :{prefix}end"


def _summary_sql(window: Window, p: str, *, tracked: bool) -> str:
    buckets = f"granularity = :{p}g AND {in_window(window, prefix=p)}"
    if window.current and tracked:
        active = f"SELECT coalesce(sum(users), 0) FROM stats_window_actives WHERE kind = :{p}kind"
    elif window.current:
        active = f"SELECT count(DISTINCT user_id) FROM stats_user_buckets WHERE {buckets}"
    else:
        active = f"""SELECT coalesce(sum(users), 0) FROM stats_bucket_gaps
    WHERE {buckets} AND gap > round(extract(epoch FROM bucket - :{p}start) / :{p}unit_s)"""
    signups = "" if window.current else f" WHERE bucket < :{p}end"
    return f"""
SELECT
  (SELECT coalesce(sum(users), 0) FROM stats_signups{signups}) AS total_users,
  (SELECT coalesce(sum(message_count), 0) FROM stats_buckets WHERE {buckets}) AS total_messages,
  ({active}) AS active_dialogs,
  (SELECT coalesce(sum(length_sum), 0) FROM stats_buckets WHERE {buckets}) AS length_sum
"""


def summary_query(
    window: Window, *, tracked: bool = True
) -> StatsQuery[tuple[SummaryFigures, SummaryFigures]]:
    """Totals of the window and of the window before it, in one round trip.

    Distinct users of the current window are the kept count of users with messages in it (when
    ``tracked``, after :func:`advance_window_query`). Those of the window before come from the gap
    counts: a user is counted at the first bucket of the window where they were active, the one
    whose previous activity lies before the window.
    """
    previous = window.previous()
    sql = (
        f"SELECT cur.*, prev.* FROM ({_summary_sql(window, '', tracked=tracked)}) AS cur, "
        f"({_summary_sql(previous, 'p_', tracked=tracked)}) AS prev"
    )

    def parse(rows: Sequence[Any]) -> tuple[SummaryFigures, SummaryFigures]:
        values = [int(v) for v in rows[0]]
        return SummaryFigures(*values[:4]), SummaryFigures(*values[4:])

    params = _window_params(window) | _window_params(previous, "p_")
    return StatsQuery("summary", text(sql), params, parse)


def bucket_points_sql(window: Window) -> str:
    """Timeline rows (bucket, messages, users) from ``:start`` to ``:last``, every bucket present.

    The buckets before ``:last`` read the bucket totals and gap counts; ``:last`` is the current
    one and also holds what is stamped after it; its users are the distinct users of its user-bucket
    rows (one bucket's worth, found through the last_at index).
    """
    return f"""
    SELECT b.bucket, coalesce(sb.message_count, 0) AS message_count, coalesce(g.users, 0) AS active_users
      FROM generate_series(CAST(:start AS timestamptz), CAST(:last AS timestamptz) - CAST(:unit AS interval),
                           CAST(:unit AS interval)) AS b(bucket)
      LEFT JOIN stats_buckets sb ON sb.granularity = :g AND sb.bucket = b.bucket
      LEFT JOIN (SELECT bucket, sum(users) AS users FROM stats_bucket_gaps
                  WHERE granularity = :g AND bucket >= :start AND bucket < :last GROUP BY bucket) g
             ON g.bucket = b.bucket
    UNION ALL
    SELECT CAST(:last AS timestamptz),
           (SELECT coalesce(sum(message_count), 0) FROM stats_buckets
             WHERE granularity = :g AND {in_window(window, prefix="last_")}),
           (SELECT count(DISTINCT user_id) FROM stats_user_buckets
             WHERE granularity = :g AND {in_window(window, "last_at", prefix="last_")})
    """


def timeline_parser(window: Window) -> Callable[[Sequence[Any]], list[TimelinePoint]]:
    """Rows (point, messages, users) as timeline points, each marked partial or not."""

    def parse(rows: Sequence[Any]) -> list[TimelinePoint]:
        return [
            TimelinePoint(r[0], int(r[1]), int(r[2]), window.partial(i, len(rows)))
            for i, r in enumerate(rows)
        ]

    return parse


def activity_query(window: Window) -> StatsQuery[list[TimelinePoint]]:
    """Messages and distinct users per bucket, every bucket present (empty ones as zeros)."""
    last = window.points[-1]
    params = _window_params(window) | {
        "unit": window.unit, "last": last, "last_start": last, "last_end": window.end,
    }  # fmt: skip
    sql = f"{bucket_points_sql(window)} ORDER BY 1"
    return StatsQuery("activity", text(sql), params, timeline_parser(window))


def _preview_join(window: Window, preview_length: int | None) -> str:
    if not preview_length:
        return "LEFT JOIN (SELECT NULL::text AS content) AS pv ON true"
    return f"""LEFT JOIN LATERAL (
             SELECT left(content, :preview_length + 1) AS content FROM messages
              WHERE user_id = p.user_id AND deleted_at IS NULL AND {in_window(window, "created_at")}
              ORDER BY created_at DESC LIMIT 1) AS pv ON true"""


def _scan_rows(window: Window) -> str:
    """Reading user-bucket rows newest first, the n-th distinct user appears within the first
    (n - 1) x buckets + 1 rows; a current window's buckets include those stamped ahead."""
    ahead = "(SELECT count(*) FROM stats_buckets WHERE granularity = :g AND bucket >= :end)"
    return f"(:limit - 1) * (:buckets + {ahead if window.current else 0}) + 1"


# A user's latest dialog in a current window: the run of their messages ending with the latest one,
# back to the latest pause longer than :dialog_gap (or the window's start). The user's hourly rows are
# read newest first until one holds such a pause: inside the hour (its longest pause, `max_pause`) or
# before it (its first message against the previous active hour's last). Only a pause inside an hour
# is then placed among that hour's messages; the count is the start hour's messages from the dialog's
# start plus the later hours' counts. A heavy user who never paused reads their hourly rows, never
# their messages.
_HOUR_OF_START = "date_trunc('hour', d.started, 'UTC')"
LATEST_DIALOG = f"""CROSS JOIN LATERAL (
       SELECT greatest(
                (SELECT min(created_at) FROM messages
                  WHERE user_id = p.user_id AND deleted_at IS NULL AND created_at >= :start),
                CASE WHEN brk.inside THEN (
                  SELECT max(created_at) FROM (
                    SELECT created_at, created_at - lag(created_at) OVER (ORDER BY created_at) AS pause
                      FROM messages
                     WHERE user_id = p.user_id AND deleted_at IS NULL
                       AND created_at >= brk.bucket AND created_at < brk.bucket + interval '1 hour') AS x
                   WHERE pause > :dialog_gap)
                ELSE brk.first_at END) AS started
         FROM (SELECT 1) AS one
         LEFT JOIN LATERAL (
           SELECT bucket, first_at, inside FROM (
             SELECT bucket, first_at, max_pause > :dialog_gap AS inside,
                    first_at - lead(last_at) OVER (ORDER BY bucket DESC) > :dialog_gap AS after_pause
               FROM stats_user_buckets
              WHERE granularity = 'h' AND user_id = p.user_id AND bucket >= :start_hour
              ORDER BY bucket DESC) AS h
            WHERE inside OR after_pause
            ORDER BY bucket DESC LIMIT 1) AS brk ON true) AS d
     CROSS JOIN LATERAL (
       SELECT (SELECT count(*) FROM messages
                WHERE user_id = p.user_id AND deleted_at IS NULL AND created_at >= d.started
                  AND created_at < {_HOUR_OF_START} + interval '1 hour')
              + (SELECT coalesce(sum(message_count), 0) FROM stats_user_buckets
                  WHERE granularity = 'h' AND user_id = p.user_id AND bucket > {_HOUR_OF_START})
                AS message_count,
              d.started AS first_at,
              (SELECT max(last_at) FROM stats_user_buckets
                WHERE granularity = 'h' AND user_id = p.user_id AND bucket >= {_HOUR_OF_START}) AS last_at
     ) AS agg"""


def recent_dialogs_query(
    window: Window, *, limit: int, preview_length: int | None, dialog_gap: timedelta
) -> StatsQuery[list[DialogFigures]]:
    """The latest dialog of each of the ``limit`` users whose latest message in the window is newest."""
    sql = f"""
    WITH latest AS (
      SELECT user_id, last_at FROM stats_user_buckets
       WHERE granularity = :g AND {in_window(window, "last_at")}
       ORDER BY last_at DESC, user_id LIMIT {_scan_rows(window)}),
    picked AS (
      SELECT user_id, max(last_at) AS last_at FROM latest
       GROUP BY user_id ORDER BY max(last_at) DESC, user_id LIMIT :limit)
    SELECT p.user_id, agg.message_count, agg.first_at, agg.last_at, pv.content
      FROM picked p
     {LATEST_DIALOG}
     {_preview_join(window, preview_length)}
     ORDER BY agg.last_at DESC, p.user_id
    """

    def parse(rows: Sequence[Any]) -> list[DialogFigures]:
        return [
            DialogFigures(int(r[0]), int(r[1]), r[2], r[3], truncate_preview(r[4], preview_length))
            for r in rows
        ]

    params = _window_params(window) | {
        "buckets": len(window.buckets), "limit": limit, "preview_length": preview_length,
        "dialog_gap": dialog_gap, "start_hour": truncate(window.start, HOUR),
    }  # fmt: skip
    return StatsQuery("recent_dialogs", text(sql), params, parse)


def truncate_preview(content: str | None, length: int | None) -> str | None:
    """The start of a message for a preview: ``length`` characters at most, "…" when cut; None when off."""
    if content is None or not length:
        return None
    return content if len(content) <= length else content[: length - 1].rstrip() + "…"


def advance_window_query(window: Window) -> StatsQuery[bool]:
    """Move the window's kept per-user totals to start at ``window.start`` (a write, run first).

    False when the window is older than the one kept: top users are then aggregated directly.
    """
    sql = "SELECT stats_advance_window(:kind, :start)"
    return StatsQuery(
        "advance_window", text(sql), {"kind": window.period.value, "start": window.start},
        lambda rows: bool(rows[0][0]),
    )  # fmt: skip


# A current window counts every bucket from its start on — also one stamped after its end (a writer
# whose clock runs ahead), as the kept totals do — so a user whose only messages lie ahead still has
# a last activity, never none.
_TOP_FROM_TOTALS = """
    SELECT t.user_id, t.total, d.days, d.last_activity, d.cost_usd
      FROM (SELECT user_id, total FROM stats_window_totals
             WHERE kind = :kind AND total > 0 ORDER BY total DESC, user_id LIMIT :limit) AS t
     CROSS JOIN LATERAL (
       SELECT count(DISTINCT date_trunc('day', bucket, 'UTC')) AS days, max(last_at) AS last_activity,
              sum(cost_usd) AS cost_usd
         FROM stats_user_buckets
        WHERE granularity = :g AND user_id = t.user_id AND bucket >= :start) AS d
     WHERE d.last_activity IS NOT NULL
     ORDER BY t.total DESC, t.user_id
"""

_TOP_AGGREGATED = """
    SELECT user_id, sum(message_count) AS total, count(DISTINCT date_trunc('day', bucket, 'UTC')) AS days,
           max(last_at) AS last_activity, sum(cost_usd) AS cost_usd
      FROM stats_user_buckets
     WHERE granularity = :g AND bucket >= :start
     GROUP BY user_id ORDER BY total DESC, user_id LIMIT :limit
"""


def top_users_query(window: Window, *, limit: int, tracked: bool = True) -> StatsQuery[list[TopUserFigures]]:
    """The ``limit`` users with most messages in the window (ties: lower user id first).

    For the current window (``tracked``, after :func:`advance_window_query`) this is an index scan
    of the kept per-user totals; otherwise (a window older than the kept one) the user-bucket rows
    from its start on are aggregated.
    """

    def parse(rows: Sequence[Any]) -> list[TopUserFigures]:
        return [TopUserFigures(int(r[0]), int(r[1]), int(r[2]), r[3], Decimal(r[4])) for r in rows]

    params = _window_params(window) | {"limit": limit, "kind": window.period.value}
    return StatsQuery("top_users", text(_TOP_FROM_TOTALS if tracked else _TOP_AGGREGATED), params, parse)


def llm_usage_query(window: Window) -> StatsQuery[list[ModelUsage]]:
    """Answers per model in the (current) window, most used first."""
    sql = """
    SELECT model, sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(fallback_count),
           sum(latency_sum_ms), sum(latency_count), sum(cost_usd), sum(cost_count), sum(stopped_count),
           sum(replaced_count)
      FROM stats_model_buckets
     WHERE granularity = :g AND bucket >= :start
     GROUP BY model
    HAVING sum(requests) > 0
     ORDER BY sum(requests) DESC, model
    """

    def parse(rows: Sequence[Any]) -> list[ModelUsage]:
        return [model_usage(r) for r in rows]

    return StatsQuery("llm_usage", text(sql), _window_params(window), parse)
