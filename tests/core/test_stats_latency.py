"""Latency percentiles from bins: never below the exact nearest-rank value, at most 10 % above it."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.stats import latency
from parley_core.stats.periods import Period, WindowMode, window_for

NOW = datetime(2026, 11, 26, 14, 35, tzinfo=UTC)


def nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


async def test_percentiles_bound_the_exact_values(engine: AsyncEngine) -> None:
    rng = random.Random(7)
    latencies = {
        "fast/model": list(range(1, 101)),
        "slow/model": [rng.randint(200, 90_000) for _ in range(500)],
    }
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO users (id) VALUES (1)"))
        for model, values in latencies.items():
            for i, ms in enumerate(values):
                await conn.execute(
                    text("INSERT INTO messages (user_id, role, content, content_length, model, latency_ms,"
                         " created_at) VALUES (1, 'assistant', 'a', 1, :model, :ms, :at)"),
                    {"model": model, "ms": ms, "at": NOW - timedelta(minutes=5 + i % 600)},
                )  # fmt: skip
    query = latency.latency_query(window_for(Period.DAY, NOW, WindowMode.ROLLING))
    async with engine.connect() as conn:
        found = {m.model: m for m in query.parse((await conn.execute(query.statement, query.params)).all())}

    assert found["fast/model"] == latency.ModelLatency("fast/model", 100, 50.5, 98.5, 108.3)
    slow = found["slow/model"]
    assert slow.answers == 500
    for q, reported in zip(latency.PERCENTILES, (slow.p50_ms, slow.p95_ms, slow.p99_ms), strict=True):
        exact = nearest_rank(latencies["slow/model"], q)
        assert exact <= reported <= exact * latency.BIN_RATIO + 0.1, (q, exact, reported)
