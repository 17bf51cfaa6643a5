"""Prometheus metrics of the API: the instrumentator's http_* plus database and stats metrics.

Each app gets its own registry, so tests (and any process hosting two apps) never collide on
metric names. Run one worker per pod (the chart does): several workers would need
prometheus_client's multiprocess mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.db import pool_stats

# Not measured as traffic: probes and the scrape itself.
EXCLUDED_HANDLERS = ["/metrics", "/health", "/ready"]
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PoolCollector(Collector):
    """Reads the connection pool at scrape time, so the gauges are never stale."""

    def __init__(self, engine_ref: list[AsyncEngine]) -> None:
        self._engine_ref = engine_ref

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """database_connection_pool_size and database_connection_pool_available."""
        if not self._engine_ref:
            return
        stats = pool_stats(self._engine_ref[0])
        yield GaugeMetricFamily(
            "database_connection_pool_size", "Connections the pool may hold (pool_size + max_overflow)",
            value=stats.capacity,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "database_connection_pool_available", "Connections that can still be checked out",
            value=stats.available,
        )  # fmt: skip


@dataclass
class ApiMetrics:
    """The metric objects routes and collectors record into."""

    registry: CollectorRegistry
    query_duration: Histogram
    stats_requests: Counter
    database_up: Gauge
    ready: Gauge
    engine_ref: list[AsyncEngine]

    def watch_engine(self, engine: AsyncEngine) -> None:
        """Report this engine's pool (called by the lifespan once the engine exists)."""
        self.engine_ref[:] = [engine]


def create_metrics() -> ApiMetrics:
    """A fresh registry with the custom metrics registered."""
    registry = CollectorRegistry()
    engine_ref: list[AsyncEngine] = []
    registry.register(PoolCollector(engine_ref))
    return ApiMetrics(
        registry=registry,
        query_duration=Histogram(
            "database_query_duration_seconds",
            "Duration of named database queries",
            ["query_name"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        ),
        stats_requests=Counter(
            "stats_api_requests_total",
            "Requests to the stats API by period and outcome",
            ["period", "status"],
            registry=registry,
        ),
        database_up=Gauge(
            "database_up",
            "1 while SELECT 1 answers within READY_DB_TIMEOUT_SECONDS (checked every 15 s), else 0",
            registry=registry,
        ),
        ready=Gauge(
            "api_ready",
            "1 when the last /ready check passed (database up at the schema head, not draining), else 0",
            registry=registry,
        ),
        engine_ref=engine_ref,
    )


def install_metrics(app: FastAPI, metrics: ApiMetrics) -> None:
    """Instrument every route (http_* metrics) and serve /metrics from the app's registry."""
    Instrumentator(
        excluded_handlers=EXCLUDED_HANDLERS,
        should_group_status_codes=False,
        registry=metrics.registry,
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
