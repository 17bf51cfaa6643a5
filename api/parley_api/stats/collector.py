"""Runs the stats queries with timing, slow-query warnings, metrics and optional EXPLAIN ANALYZE.

Every query is timed (DEBUG with period and user, WARNING above SLOW_QUERY_SECONDS), the whole
collection too (WARNING above SLOW_REQUEST_SECONDS), and with ENABLE_QUERY_ANALYSIS each query's
plan is logged at DEBUG before it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_api.plumbing.metrics import ApiMetrics
from parley_core import budgets
from parley_core.budgets import Budget, Limits, Meter
from parley_core.logging import get_logger
from parley_core.repositories import budgets as stored_budgets
from parley_core.stats import costs, latency, queries, retention, rolling, spenders
from parley_core.stats.costs import ModelPoint
from parley_core.stats.latency import ModelLatency
from parley_core.stats.periods import Period, Window, WindowMode, window_for
from parley_core.stats.queries import (
    DialogFigures,
    ModelUsage,
    StatsQuery,
    SummaryFigures,
    TimelinePoint,
    TopUserFigures,
)
from parley_core.stats.retention import CohortRetention
from parley_core.stats.rolling import Audience
from parley_core.stats.spenders import Spender

log = get_logger(__name__)
T = TypeVar("T")

RECENT_DIALOGS = 15
TOP_USERS = 10
TOP_SPENDERS = 10


@dataclass(frozen=True)
class CollectorOptions:
    """What the settings say about collecting."""

    preview_length: int | None
    dialog_gap: timedelta
    slow_query_seconds: float
    slow_request_seconds: float
    explain: bool
    budget_defaults: Limits
    budget_exempt_user_ids: frozenset[int]


@dataclass(frozen=True)
class StatsFigures:
    """Everything one stats response is made of."""

    window: Window
    summary: SummaryFigures
    previous: SummaryFigures
    timeline: list[TimelinePoint]
    recent: list[DialogFigures]
    top: list[TopUserFigures]
    models: list[ModelUsage]
    audience: Audience
    spenders: list[SpenderFigures]
    latency: list[ModelLatency]
    llm_timeline: list[ModelPoint]
    retention: list[CohortRetention]


@dataclass(frozen=True)
class SpenderFigures:
    """A top spender, with the budget that applies to them and its meters now."""

    spender: Spender
    budget: Budget
    meters: list[Meter]


class StatsCollector:
    """Collects the figures of one period: a short write to move the kept window, then one snapshot."""

    def __init__(self, engine: AsyncEngine, metrics: ApiMetrics, options: CollectorOptions) -> None:
        self.engine = engine
        self.metrics = metrics
        self.options = options

    async def explain(self, conn: AsyncConnection, query: StatsQuery[Any], context: dict[str, Any]) -> None:
        """Log the plan of ``query`` (EXPLAIN ANALYZE runs it once more: development only)."""
        result = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {query.statement.text}"), query.params)
        plan = "\n".join(str(row[0]) for row in result)
        log.debug("query_plan", query_name=query.name, plan=plan, **context)

    async def run(self, conn: AsyncConnection, query: StatsQuery[T], context: dict[str, Any]) -> T:
        """Execute one named query, timed and observed."""
        if self.options.explain:
            await self.explain(conn, query, context)
        started = time.perf_counter()
        rows = (await conn.execute(query.statement, query.params)).all()
        elapsed = time.perf_counter() - started
        self.metrics.query_duration.labels(query_name=query.name).observe(elapsed)
        fields = {"query_name": query.name, "elapsed_ms": round(elapsed * 1000, 2), **context}
        if elapsed > self.options.slow_query_seconds:
            log.warning("slow_query", **fields)
        else:
            log.debug("query_timed", **fields)
        return query.parse(rows)

    async def spenders(
        self, conn: AsyncConnection, found: list[Spender], now: datetime
    ) -> list[SpenderFigures]:
        """Each spender's budget and how much of each limit the day and month used (the ledger)."""
        ids = [s.user_id for s in found]
        stored = await stored_budgets.read_budgets(conn, user_ids=ids, today=now.date())
        figures = []
        for spender in found:
            budget = budgets.effective_budget(
                user_id=spender.user_id,
                defaults=self.options.budget_defaults,
                override=stored[spender.user_id].override,
                exempt_user_ids=self.options.budget_exempt_user_ids,
            )
            meters = budgets.meters(budget, stored[spender.user_id].spending, now)
            figures.append(SpenderFigures(spender, budget, meters))
        return figures

    async def collect(
        self, period: Period, mode: WindowMode, *, now: datetime, username: str | None
    ) -> StatsFigures:
        """All figures of ``period``'s window ending now, from one consistent snapshot."""
        started = time.perf_counter()
        window = window_for(period, now, mode)
        context = {"period": period.value, "window": mode.value, "user": username}
        module: Any = rolling if mode is WindowMode.ROLLING else queries
        move = rolling.move_windows_query(window) if mode is WindowMode.ROLLING else None
        async with self.engine.begin() as conn:
            tracked = await self.run(conn, move or queries.advance_window_query(window), context)
            audience_tracked = await self.run(conn, rolling.move_audience_query(now), context)
        async with self.engine.connect() as connection:
            conn = await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with conn.begin():
                # Small index-bound queries whose row estimates can be far off: compiling them (JIT)
                # would cost more than running them.
                await conn.execute(text("SET LOCAL jit = off"))
                summary, previous = await self.run(
                    conn, module.summary_query(window, tracked=tracked), context
                )
                figures = StatsFigures(
                    window=window,
                    summary=summary,
                    previous=previous,
                    timeline=await self.run(conn, module.activity_query(window), context),
                    recent=await self.run(
                        conn,
                        module.recent_dialogs_query(
                            window,
                            limit=RECENT_DIALOGS,
                            preview_length=self.options.preview_length,
                            dialog_gap=self.options.dialog_gap,
                        ),
                        context,
                    ),
                    top=await self.run(
                        conn, module.top_users_query(window, limit=TOP_USERS, tracked=tracked), context
                    ),
                    models=await self.run(conn, module.llm_usage_query(window), context),
                    audience=await self.run(
                        conn, rolling.audience_query(now, tracked=audience_tracked), context
                    ),
                    latency=await self.run(conn, latency.latency_query(window), context),
                    llm_timeline=await self.run(conn, costs.cost_timeline_query(window), context),
                    retention=await self.run(conn, retention.retention_query(now), context),
                    spenders=await self.spenders(
                        conn,
                        await self.run(
                            conn,
                            spenders.top_spenders_query(window, limit=TOP_SPENDERS, tracked=tracked),
                            context,
                        ),
                        now,
                    ),
                )
        elapsed = time.perf_counter() - started
        fields = {"elapsed_ms": round(elapsed * 1000, 2), **context}
        if elapsed > self.options.slow_request_seconds:
            log.warning("slow_stats_collection", **fields)
        else:
            log.debug("stats_collected", **fields)
        return figures
