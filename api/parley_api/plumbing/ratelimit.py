"""Route rate limits (limits, fixed window), counted by a dependency of each limited route.

The dependency calls ``RateLimiter.check`` once the request is worth counting: on an authenticated
route after the current user is known, so a 401 costs nothing, keyed ``user:<name>`` whatever
address the user comes from; elsewhere keyed ``addr:<ip>``, the client address (X-Forwarded-For
believed only from TRUSTED_PROXIES). Over the limit the answer is a JSON 429 naming the limit, with
Retry-After in seconds. Each app has its own RateLimiter in its AppState, so apps and tests never
share counters; RATE_LIMIT_ENABLED=false turns the checks off.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from fastapi import HTTPException, status
from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import HTTPConnection

from parley_api.plumbing.client_address import Network, client_address
from parley_api.plumbing.counters import Counters
from parley_core.logging import get_logger
from parley_core.settings import ApiSettings

log = get_logger(__name__)

KEY_PREFIX = "parley"


@functools.lru_cache(maxsize=32)
def _items(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))


class RateLimiter:
    """The route limits of one app, counted in RATE_LIMIT_STORAGE_URI."""

    def __init__(self, *, storage_uri: str, enabled: bool, trusted_proxies: Sequence[Network]) -> None:
        self.enabled = enabled
        self._trusted_proxies = trusted_proxies
        self._counters = Counters(
            storage_uri, FixedWindowRateLimiter, unavailable_event="rate_limit_storage_unavailable"
        )

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> RateLimiter:
        """Build from API settings (no I/O happens here)."""
        return cls(
            storage_uri=settings.rate_limit_storage,
            enabled=settings.rate_limit_enabled,
            trusted_proxies=settings.trusted_proxies,
        )

    async def check(
        self, request: HTTPConnection, limit: str, *, scope: str, username: str | None = None
    ) -> None:
        """Count ``request`` against ``limit`` (limits notation, e.g. ``10/minute``) in the counters
        of ``scope``: per ``username`` when given, else per client address. Over it: HTTP 429."""
        if not self.enabled:
            return
        if username is not None:
            key = f"user:{username}"
        else:
            key = f"addr:{client_address(request, self._trusted_proxies)}"
        for item in _items(limit):
            if not await self._counters.hit(item, KEY_PREFIX, key, scope):
                retry_after = await self._counters.retry_after(item, KEY_PREFIX, key, scope)
                log.info("rate_limited", path=request.url.path, limit=str(item), retry_after=retry_after)
                raise HTTPException(
                    status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                    detail=f"Rate limit exceeded: {item}",
                    headers={"Retry-After": str(retry_after)},
                )
