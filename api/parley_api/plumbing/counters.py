"""Rate-limit counters in RATE_LIMIT_STORAGE_URI that go on counting while the storage is down.

The route rate limits and the failed-login throttle both count here. A network storage (Redis)
blocks, so its calls run in a worker thread; memory is a dict operation, cheaper inline. After a
storage error the counting moves to process memory for FALLBACK_SECONDS, then the storage is tried
again: the limits stay roughly enforced instead of failing every request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from limits import RateLimitItem
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import RateLimiter

from parley_core.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
# After a storage failure, count in process memory this long before trying the storage again.
FALLBACK_SECONDS = 30.0


def storage_options(uri: str) -> dict[str, Any]:
    """Client options for a limits storage: short timeouts, so a hung Redis cannot hang requests."""
    if uri.startswith("memory"):
        return {}
    return {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


class Counters:
    """One limits strategy (fixed or moving window) over the storage at ``storage_uri``, with a
    memory fallback; ``unavailable_event`` is what a storage failure is logged as."""

    def __init__(self, storage_uri: str, strategy: type[RateLimiter], *, unavailable_event: str) -> None:
        storage = storage_from_string(storage_uri, **storage_options(storage_uri))
        self._limiter = strategy(storage)
        self._in_thread = not isinstance(storage, MemoryStorage)
        self._fallback = strategy(MemoryStorage())
        self._fallback_until = 0.0
        self._unavailable_event = unavailable_event

    async def hit(self, item: RateLimitItem, *keys: str) -> bool:
        """Count one against ``item`` for ``keys``; False (counting nothing) when none is left."""
        return await self._run(lambda limiter: limiter.hit(item, *keys))

    async def test(self, item: RateLimitItem, *keys: str) -> bool:
        """Whether one more would fit, counting nothing."""
        return await self._run(lambda limiter: limiter.test(item, *keys))

    async def clear(self, item: RateLimitItem, *keys: str) -> None:
        """Forget what was counted against ``item`` for ``keys``."""
        await self._run(lambda limiter: limiter.clear(item, *keys))

    async def retry_after(self, item: RateLimitItem, *keys: str) -> int:
        """Whole seconds (at least 1) until the window of ``item`` for ``keys`` resets."""
        stats = await self._run(lambda limiter: limiter.get_window_stats(item, *keys))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _run(self, operation: Callable[[RateLimiter], T]) -> T:
        if time.monotonic() >= self._fallback_until:
            try:
                if self._in_thread:
                    return await asyncio.to_thread(operation, self._limiter)
                return operation(self._limiter)
            except Exception as exc:  # storage down: keep counting in this process rather than not at all
                log.warning(self._unavailable_event, error=type(exc).__name__, retry_in=FALLBACK_SECONDS)
                self._fallback_until = time.monotonic() + FALLBACK_SECONDS
        return operation(self._fallback)
