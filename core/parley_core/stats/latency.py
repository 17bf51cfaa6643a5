"""LLM latency percentiles per model (p50, p95, p99), from latency bins.

`stats_latency_bins` counts each model's answers per UTC hour and day by latency bin: bin 0 under 10 ms,
bin k from 10 x 1.1^(k-1) up to 10 x 1.1^k ms. A percentile is the nearest-rank one (as SQL's
``percentile_disc``): the latency of the answer at rank ceil(q x n). The bins say which bin holds
it, and the upper end of that bin is reported — at most 10 % above the exact value, never below
it. Whole days come from the daily bins, the hours before the first midnight from the hourly ones,
a rolling window's minutes before its first full hour from `messages`; what is stamped ahead counts
as now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from parley_core.stats.costs import params
from parley_core.stats.periods import DAY, Window, truncate
from parley_core.stats.queries import StatsQuery

PERCENTILES = (0.5, 0.95, 0.99)
BIN_BASE_MS = 10
BIN_RATIO = 1.1


@dataclass(frozen=True)
class ModelLatency:
    """A model's answers with a known latency, and the upper ends of the bins of p50, p95, p99."""

    model: str
    answers: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


def bin_upper_ms(index: int) -> float:
    """The upper end of latency bin ``index`` in milliseconds (exclusive), to 0.1 ms."""
    return round(BIN_BASE_MS * BIN_RATIO**index, 1)


def percentile_bin(bins: Sequence[tuple[int, int]], q: float) -> int:
    """The bin holding the nearest-rank ``q`` percentile of (bin, answers) pairs in ascending bins."""
    rank = math.ceil(q * sum(answers for _, answers in bins))
    seen = 0
    for index, answers in bins:
        seen += answers
        if seen >= rank:
            return index
    raise ValueError("no answers")


def parse_bins(rows: Sequence[Any]) -> list[ModelLatency]:
    """Rows (model, bin, answers) ordered by model and bin, as each model's percentiles."""
    by_model: dict[str, list[tuple[int, int]]] = {}
    for model, index, answers in rows:
        by_model.setdefault(model, []).append((int(index), int(answers)))
    return [
        ModelLatency(
            model, sum(n for _, n in bins), *(bin_upper_ms(percentile_bin(bins, q)) for q in PERCENTILES)
        )
        for model, bins in sorted(by_model.items())
    ]


def latency_query(window: Window) -> StatsQuery[list[ModelLatency]]:
    """Per model with answers of known latency in a current window: p50, p95, p99."""
    sql = """
    SELECT model, bin, sum(answers)
      FROM (SELECT model, bin, answers FROM stats_latency_bins
             WHERE granularity = 'h' AND bucket >= :a AND bucket < :midnight
            UNION ALL
            SELECT model, bin, answers FROM stats_latency_bins WHERE granularity = 'd' AND bucket >= :midnight
            UNION ALL
            SELECT model, stats_latency_bin(latency_ms), 1 FROM messages
             WHERE deleted_at IS NULL AND role = 'assistant' AND model IS NOT NULL
               AND latency_ms IS NOT NULL AND created_at >= :start AND created_at < :a) AS answers
     GROUP BY 1, 2
    HAVING sum(answers) <> 0
     ORDER BY 1, 2
    """
    values = params(window)
    day_start = truncate(values["a"], DAY)
    midnight = values["a"] if day_start == values["a"] else day_start + DAY
    return StatsQuery("llm_latency", text(sql), values | {"midnight": midnight}, parse_bins)
