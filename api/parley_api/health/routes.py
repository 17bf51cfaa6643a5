"""Liveness (/health) and readiness (/ready) probes.

/health answers 200 whenever the process serves (safe as a liveness probe: a database outage
must not restart every pod) and reports details in the body. /ready answers 503 unless the
database answers, its schema is at the migrations' head, and the process is not draining.
"""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter, Response, status

from parley_api.health.checks import check_schema
from parley_api.health.schemas import DatabaseHealth, HealthPublic, ReadinessPublic
from parley_api.state import StateDep
from parley_core.db import check_database, pool_stats
from parley_core.schema import SERVABLE_STATES

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, summary="Liveness with details")
async def health(state: StateDep) -> HealthPublic:
    """Report uptime, database reachability and pool statistics; always 200 while serving."""
    check = await check_database(state.engine, timeout=state.settings.ready_db_timeout_seconds)
    return HealthPublic(
        status="ok" if check.ok else "degraded",
        version=version("parley-api"),
        uptime_seconds=state.uptime_seconds,
        draining=state.draining,
        database=DatabaseHealth(
            status="up" if check.ok else "down", latency_ms=check.latency_ms, error=check.error
        ),
        pool=pool_stats(state.engine),
    )


@router.get(
    "/ready",
    response_model=ReadinessPublic,
    summary="Readiness",
    responses={503: {"model": ReadinessPublic, "description": "Not ready; `reasons` says why"}},
)
async def ready(state: StateDep, response: Response) -> ReadinessPublic:
    """200 when the database answers at the head schema and the process is not draining, else 503."""
    db_up, schema = await check_schema(state.engine, state.settings.ready_db_timeout_seconds)
    reasons = []
    if not db_up:
        reasons.append("database unreachable")
    elif schema not in SERVABLE_STATES:
        reasons.append(f"database schema is {schema}: run the migrations")
    if state.draining:
        reasons.append("shutting down")
    if reasons:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    state.metrics.ready.set(0 if reasons else 1)
    state.metrics.database_up.set(1 if db_up else 0)
    return ReadinessPublic(
        status="not_ready" if reasons else "ready",
        database="up" if db_up else "down",
        schema_revision=schema,
        draining=state.draining,
        reasons=reasons,
    )
