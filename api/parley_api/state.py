"""What the API process holds for its lifetime: engine, sessions, metrics, start time, draining flag."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from parley_api.plumbing.metrics import ApiMetrics
from parley_api.stats.result_cache import StatsResultCache
from parley_core.settings import ApiSettings


@dataclass
class AppState:
    """Created by the lifespan at startup; reached by routes through ``deps``."""

    settings: ApiSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    metrics: ApiMetrics
    stats_cache: StatsResultCache
    started_at: float = field(default_factory=time.monotonic)
    draining: bool = False

    @property
    def uptime_seconds(self) -> float:
        """Seconds since the process started serving."""
        return round(time.monotonic() - self.started_at, 3)


def get_state(request: Request) -> AppState:
    """The process state the lifespan created."""
    state: AppState = request.app.state.parley
    return state


StateDep = Annotated[AppState, Depends(get_state)]
