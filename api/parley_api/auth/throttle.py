"""Login throttling per username and per client address (limits, moving window).

What is counted is a password check that reaches bcrypt: a credential the verification cache
already knows costs nothing. The check is *reserved* before bcrypt runs — one atomic
test-and-count in the storage — so forty parallel guesses against a budget of five get five
bcrypt checks and thirty-five 429s, never forty checks recorded afterwards. Once a username or an
address has used its budget, every further attempt for it is refused with 429 before the password
is looked at, so guessing cannot go on at any speed, not even against the cache. The counters live
in the same storage as the rate limiter (RATE_LIMIT_STORAGE_URI), so with Redis the budget is shared
by all replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

from parley_core.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
NAMESPACE = "parley-login-failures"
# After a storage failure, count in process memory this long before trying the storage again.
FALLBACK_SECONDS = 30.0


class LoginThrottledError(Exception):
    """Too many failed logins for this username or address; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"too many failed logins ({scope})")
        self.retry_after = retry_after
        self.scope = scope


class LoginThrottle:
    """Counts failed logins and refuses attempts over the per-username or per-address limits."""

    def __init__(
        self,
        *,
        storage_uri: str,
        per_username: str,
        per_address: str,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        storage = storage_from_string(storage_uri, **(storage_options or {}))
        self._limiter = MovingWindowRateLimiter(storage)
        # Network storages block; memory is a dict operation, cheaper inline than in a thread.
        self._in_thread = not isinstance(storage, MemoryStorage)
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._fallback_until = 0.0
        self._per_username = parse_many(per_username)
        self._per_address = parse_many(per_address)

    def _buckets(self, username: str, address: str) -> list[tuple[str, RateLimitItem, tuple[str, ...]]]:
        # Hashed, so arbitrary client input never becomes a storage key of arbitrary length.
        user_key = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return [
            *(("username", item, (NAMESPACE, "user", user_key)) for item in self._per_username),
            *(("address", item, (NAMESPACE, "addr", address)) for item in self._per_address),
        ]

    async def _run(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        if time.monotonic() >= self._fallback_until:
            try:
                if self._in_thread:
                    return await asyncio.to_thread(operation, self._limiter)
                return operation(self._limiter)
            except Exception as exc:  # storage down: keep throttling in this process rather than not at all
                log.warning(
                    "login_throttle_storage_unavailable", error=type(exc).__name__, retry_in=FALLBACK_SECONDS
                )
                self._fallback_until = time.monotonic() + FALLBACK_SECONDS
        return operation(self._fallback)

    async def check(self, username: str, address: str) -> None:
        """Raise LoginThrottledError when the username or the address has no failures left."""
        for scope, item, keys in self._buckets(username, address):
            if not await self._run(partial(_test, item=item, keys=keys)):
                stats = await self._run(partial(_window_stats, item=item, keys=keys))
                raise LoginThrottledError(max(1, math.ceil(stats.reset_time - time.time())), scope)

    async def reserve(self, username: str, address: str) -> None:
        """Count one password check against the username and the address before it runs; raise
        LoginThrottledError (counting nothing further) when either budget is used up."""
        for scope, item, keys in self._buckets(username, address):
            if not await self._run(partial(_hit, item=item, keys=keys)):
                stats = await self._run(partial(_window_stats, item=item, keys=keys))
                raise LoginThrottledError(max(1, math.ceil(stats.reset_time - time.time())), scope)

    async def forgive(self, username: str) -> None:
        """The right password was given: forget the username's counted checks.

        Successful checks are counted too (the reservation comes before bcrypt knows the answer),
        and each replica misses its cache once per credential, more with the cache off: without
        this, a rollout of eight replicas would lock an account out with its own password. The
        address budget is kept, so guessing from one place stays bounded."""
        for scope, item, keys in self._buckets(username, ""):
            if scope == "username":
                await self._run(partial(_clear, item=item, keys=keys))


def _clear(limiter: MovingWindowRateLimiter, *, item: RateLimitItem, keys: tuple[str, ...]) -> None:
    limiter.clear(item, *keys)


def _test(limiter: MovingWindowRateLimiter, *, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
    return limiter.test(item, *keys)


def _hit(limiter: MovingWindowRateLimiter, *, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
    return limiter.hit(item, *keys)


def _window_stats(
    limiter: MovingWindowRateLimiter, *, item: RateLimitItem, keys: tuple[str, ...]
) -> WindowStats:
    return limiter.get_window_stats(item, *keys)
