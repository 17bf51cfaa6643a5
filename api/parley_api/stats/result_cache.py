"""Each period's figures computed once per STATS_CACHE_SECONDS, however many dashboards ask.

The figures do not depend on who asks, and a team's dashboards poll the same periods: fifty of them
would otherwise run the same six queries fifty times a second, each a snapshot transaction. Within
the window every request gets the result of the one computation running or just finished (a
single flight per period); a failed computation is not kept, so the next request tries again.
The window is short enough that a new message still shows within about a second.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from parley_api.plumbing.single_flight import SingleFlight
from parley_api.stats.collector import StatsFigures
from parley_core.stats.periods import Period, WindowMode

Compute = Callable[[datetime], Awaitable[StatsFigures]]
Key = tuple[Period, WindowMode]


class StatsResultCache:
    """Figures per period and window mode, kept ``ttl`` seconds (0: every request computes)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._kept: dict[Key, tuple[float, StatsFigures, datetime]] = {}
        self._flights: SingleFlight[Key, tuple[StatsFigures, datetime]] = SingleFlight()

    async def get(self, key: Key, compute: Compute) -> tuple[StatsFigures, datetime]:
        """The figures of ``key`` (period, window mode) and the time they were computed for."""
        if self.ttl <= 0:
            now = datetime.now(UTC)
            return await compute(now), now
        kept = self._kept.get(key)
        if kept is not None and time.monotonic() < kept[0]:
            return kept[1], kept[2]

        async def fresh() -> tuple[StatsFigures, datetime]:
            now = datetime.now(UTC)
            figures = await compute(now)
            self._kept[key] = (time.monotonic() + self.ttl, figures, now)
            return figures, now

        return await self._flights.run(key, fresh)
