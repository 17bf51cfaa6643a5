"""The one state of a running app: everything its routes need, made by the lifespan at startup.

Routes reach it through ``StateDep``. Nothing here is global: every app (and every test) has its
own engine, metrics, caches, authenticator and rate-limit counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.auth.basic import Authenticator
from parley_api.plumbing.metrics import ApiMetrics
from parley_api.plumbing.ratelimit import RateLimiter
from parley_api.stats.result_cache import StatsResultCache
from parley_core.settings import ApiSettings


@dataclass
class AppState:
    """Held in ``app.state.parley`` from startup to shutdown."""

    settings: ApiSettings
    engine: AsyncEngine
    metrics: ApiMetrics
    stats_cache: StatsResultCache
    authenticator: Authenticator
    rate_limiter: RateLimiter
    started_at: float = field(default_factory=time.monotonic)
    draining: bool = False

    @property
    def uptime_seconds(self) -> float:
        """Seconds since the process started serving."""
        return round(time.monotonic() - self.started_at, 3)


def state_of(app: FastAPI) -> AppState | None:
    """The state of ``app``; None before its lifespan started."""
    state: AppState | None = getattr(app.state, "parley", None)
    return state


def get_state(request: Request) -> AppState:
    """The state of the app serving ``request``."""
    state: AppState = request.app.state.parley
    return state


StateDep = Annotated[AppState, Depends(get_state)]
