"""Liveness (/health) and readiness (/ready) probes.

/health answers 200 whenever the process serves (safe as a liveness probe: a database outage
must not restart every pod) and reports details in the body. /ready answers 503 unless the
database answers, its schema is at the migrations' head, and the process is not draining.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.deps import StateDep
from parley_core.db import check_database, pool_stats
from parley_core.schema import head_revision, known_revisions, revision_of

router = APIRouter(tags=["health"])

# `ahead`: a newer build already migrated the database (a rolling upgrade in progress). Migrations
# are written expand-then-contract, so this build keeps serving instead of dropping out of every
# Service until the new pods are ready.
SchemaState = Literal["at_head", "ahead", "behind", "missing", "unknown"]


class DatabaseHealth(BaseModel):
    """Whether the database answered SELECT 1, and how fast."""

    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class PoolHealth(BaseModel):
    """Connection-pool counters of this process."""

    size: int
    max_overflow: int
    capacity: int
    checked_out: int
    idle: int
    open: int
    overflow: int
    available: int
    utilization: float


class HealthPublic(BaseModel):
    """Detailed process health; HTTP 200 whatever the database does."""

    status: Literal["ok", "degraded"]
    version: str
    uptime_seconds: float
    draining: bool
    database: DatabaseHealth
    pool: PoolHealth


class ReadinessPublic(BaseModel):
    """Readiness verdict and the checks behind it."""

    status: Literal["ready", "not_ready"]
    database: Literal["up", "down"]
    schema_revision: SchemaState
    draining: bool
    reasons: list[str]


async def _check_schema(engine: AsyncEngine, timeout: float) -> tuple[bool, SchemaState]:
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            current = await revision_of(conn)
    except Exception:  # any failure to reach the database is "down", never a 500
        return False, "unknown"
    if current is None:
        return True, "missing"
    if current == head_revision():
        return True, "at_head"
    return True, "behind" if current in known_revisions() else "ahead"


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
        pool=PoolHealth(**pool_stats(state.engine).as_dict()),
    )


@router.get(
    "/ready",
    response_model=ReadinessPublic,
    summary="Readiness",
    responses={503: {"model": ReadinessPublic, "description": "Not ready; `reasons` says why"}},
)
async def ready(state: StateDep, response: Response) -> ReadinessPublic:
    """200 when the database answers at the head schema and the process is not draining, else 503."""
    db_up, schema = await _check_schema(state.engine, state.settings.ready_db_timeout_seconds)
    reasons = []
    if not db_up:
        reasons.append("database unreachable")
    elif schema not in ("at_head", "ahead"):
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
