"""LLM usage over time: per timeline point and model, answers, tokens by kind, fallbacks and cost.

The points are the activity timeline's (rolling or calendar). Whole hours come from the hourly
model rollups; a rolling window's minutes before its first full hour from `messages`; everything
stamped after the last point's start counts in the last point. Every model with answers in the
window appears at every point, zeros where it gave none, so a chart's series are complete.

A stored answer carries one cost, whichever price the gateway or the price table gave it: the cost
is per model, while tokens are split into prompt and completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from parley_core.stats.periods import HOUR, Window, truncate
from parley_core.stats.queries import StatsQuery

# The point a timestamp belongs to: its UTC hour or day, the window's start for the first (cut)
# point, the last point for anything at or after its start.
POINT = (
    "greatest(CAST(:start AS timestamptz),"
    " least(date_trunc(CASE :g WHEN 'h' THEN 'hour' ELSE 'day' END, {ts}, 'UTC'),"
    " CAST(:last AS timestamptz)))"
)


@dataclass(frozen=True)
class ModelPoint:
    """One model's answers in one timeline point."""

    timestamp: datetime
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    fallback_count: int
    cost_usd: Decimal
    partial: bool


def points_parser(window: Window) -> Callable[[Sequence[Any]], list[ModelPoint]]:
    """Rows (point, model, requests, prompt, completion, fallbacks, cost) as every point x model."""

    def parse(rows: Sequence[Any]) -> list[ModelPoint]:
        found = {(r[0], r[1]): r[2:] for r in rows}
        models = sorted({r[1] for r in rows})
        points = window.points
        result = []
        for i, point in enumerate(points):
            for model in models:
                requests, prompt, completion, fallbacks, cost = found.get((point, model), (0, 0, 0, 0, 0))
                result.append(
                    ModelPoint(point, model, int(requests), int(prompt), int(completion), int(fallbacks),
                               Decimal(cost), window.partial(i, len(points)))
                )  # fmt: skip
        return result

    return parse


def params(window: Window) -> dict[str, Any]:
    """The window's start, its last point, its granularity, and where the kept hours begin."""
    aligned = truncate(window.start, HOUR) == window.start
    return {
        "start": window.start, "last": window.points[-1], "g": window.granularity,
        "a": window.start if aligned else window.kept_start,
    }  # fmt: skip


def cost_timeline_query(window: Window) -> StatsQuery[list[ModelPoint]]:
    """Per point and model of a current window (rolling or calendar), from the hourly model rollups."""
    sql = f"""
    SELECT {POINT.format(ts="bucket")} AS point, model, sum(requests), sum(prompt_tokens),
           sum(completion_tokens), sum(fallback_count), sum(cost_usd)
      FROM (SELECT bucket, model, requests, prompt_tokens, completion_tokens, fallback_count, cost_usd
              FROM stats_model_buckets WHERE granularity = 'h' AND bucket >= :a
            UNION ALL
            SELECT created_at, model, 1, coalesce(prompt_tokens, 0), coalesce(completion_tokens, 0),
                   fallback_used::int, coalesce(cost_usd, 0)
              FROM messages
             WHERE deleted_at IS NULL AND role = 'assistant' AND model IS NOT NULL
               AND created_at >= :start AND created_at < :a) AS answers
     GROUP BY 1, 2
     HAVING sum(requests) <> 0
    """
    return StatsQuery("llm_timeline", text(sql), params(window), points_parser(window))
