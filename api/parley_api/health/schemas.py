"""Bodies of the probes: /health's details and /ready's verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from parley_core.db import PoolStats

# `ahead`: a newer build already migrated the database (a rolling upgrade in progress). Migrations
# are written expand-then-contract, so this build keeps serving instead of dropping out of every
# Service until the new pods are ready.
SchemaState = Literal["at_head", "ahead", "behind", "missing", "unknown"]


class DatabaseHealth(BaseModel):
    """Whether the database answered SELECT 1, and how fast."""

    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class HealthPublic(BaseModel):
    """Detailed process health; HTTP 200 whatever the database does."""

    status: Literal["ok", "degraded"]
    version: str
    uptime_seconds: float
    draining: bool
    database: DatabaseHealth
    pool: PoolStats


class ReadinessPublic(BaseModel):
    """Readiness verdict and the checks behind it."""

    status: Literal["ready", "not_ready"]
    database: Literal["up", "down"]
    schema_revision: SchemaState
    draining: bool
    reasons: list[str]
