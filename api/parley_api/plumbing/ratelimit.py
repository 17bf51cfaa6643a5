"""Per-route rate limits (slowapi over limits), one Limiter per app, keyed by user or client address.

A route opts in with a decorator placed under its ``@router.<method>``; the route must take
``request: Request``. The decorator finds the Limiter of the app serving the request, so every app
(and every test) has its own counters and no limiter is global. The check runs after the route's
dependencies, so on an authenticated route the key is the user (``user:<name>``, set by
``get_current_user`` in ``request.state.api_username``); elsewhere it is the client address
(``addr:<ip>``, X-Forwarded-For believed only from TRUSTED_PROXIES).
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded

from parley_api.plumbing.client_address import Network, client_address
from parley_api.plumbing.counters import storage_options
from parley_core.logging import get_logger
from parley_core.settings import ApiSettings

log = get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

KEY_PREFIX = "parley"


def rate_limit_key_func(trusted_proxies: Sequence[Network]) -> Callable[[Request], str]:
    """The key of a request: its authenticated user when there is one, else its client address."""

    def key(request: Request) -> str:
        username = getattr(request.state, "api_username", None)
        if username:
            return f"user:{username}"
        return f"addr:{client_address(request, trusted_proxies)}"

    return key


def build_limiter(settings: ApiSettings) -> Limiter:
    """A slowapi Limiter on RATE_LIMIT_STORAGE_URI; it falls back to memory when the storage is down."""
    limiter = Limiter(
        key_func=rate_limit_key_func(settings.trusted_proxies),
        storage_uri=settings.rate_limit_storage,
        storage_options=storage_options(settings.rate_limit_storage),
        strategy="fixed-window",
        key_prefix=KEY_PREFIX,
        key_style="endpoint",
        headers_enabled=False,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    # slowapi also reads RATELIMIT_* variables and .env; Parley's settings are the one source, so the
    # switches it may have picked up there are set back (headers on would break non-Response routes).
    limiter.enabled = settings.rate_limit_enabled
    limiter._headers_enabled = False
    limiter._swallow_errors = True
    return limiter


def build_rate_limiting(settings: ApiSettings) -> RateLimiting:
    """An app's Limiter and the routes it guards."""
    return RateLimiting(settings=settings, limiter=build_limiter(settings))


@dataclass
class RateLimiting:
    """An app's Limiter plus the slowapi-wrapped form of each limited route, made on first use."""

    settings: ApiSettings
    limiter: Limiter
    _guarded: dict[Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]] = field(default_factory=dict)

    def guard(
        self, endpoint: Callable[..., Awaitable[Any]], limit_of: Callable[[ApiSettings], str]
    ) -> Callable[..., Awaitable[Any]]:
        """``endpoint`` behind this app's limit ``limit_of(settings)``."""
        guarded = self._guarded.get(endpoint)
        if guarded is None:
            guarded = cast(
                Callable[..., Awaitable[Any]], self.limiter.limit(limit_of(self.settings))(endpoint)
            )
            self._guarded[endpoint] = guarded
        return guarded


def _retry_after(request: Request, exc: RateLimitExceeded) -> int:
    limiter: Limiter = request.app.state.parley.rate_limiting.limiter
    current: tuple[RateLimitItem, list[str]] | None = getattr(request.state, "view_rate_limit", None)
    if current is not None:
        item, args = current
        try:
            reset_time = float(limiter.limiter.get_window_stats(item, *args).reset_time)
            return max(1, math.ceil(reset_time - time.time()))
        except Exception:  # storage gone between the hit and now: use the window length instead
            return int(item.get_expiry())
    return int(exc.limit.limit.get_expiry()) if exc.limit is not None else 60


async def handle_rate_limit_exceeded(request: Request, exc: Exception) -> JSONResponse:
    """429 as JSON with a Retry-After in seconds."""
    assert isinstance(exc, RateLimitExceeded)
    retry_after = _retry_after(request, exc)
    log.info("rate_limited", path=request.url.path, limit=exc.detail, retry_after=retry_after)
    return JSONResponse(
        status_code=429,
        content={"detail": f"Rate limit exceeded: {exc.detail}"},
        headers={"Retry-After": str(retry_after)},
    )


def install_rate_limit_handler(app: FastAPI) -> None:
    """Answer RateLimitExceeded with the JSON 429."""
    app.add_exception_handler(RateLimitExceeded, handle_rate_limit_exceeded)


def _limited(
    endpoint: Callable[P, Awaitable[R]], limit_of: Callable[[ApiSettings], str]
) -> Callable[P, Awaitable[R]]:
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{endpoint.__qualname__}: rate-limited routes must be async")
    if "request" not in inspect.signature(endpoint).parameters:
        raise TypeError(f"{endpoint.__qualname__}: rate-limited routes must take `request: Request`")

    @functools.wraps(endpoint)
    async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        request = kwargs.get("request")
        if not isinstance(request, Request):
            raise TypeError(f"{endpoint.__qualname__} was called without its request")
        rate_limiting: RateLimiting = request.app.state.parley.rate_limiting
        guarded = rate_limiting.guard(endpoint, limit_of)
        return cast(R, await guarded(*args, **kwargs))

    return limited


def stats_rate_limit(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Apply STATS_API_RATE_LIMIT (per user, or per address before auth) to a route."""
    return _limited(endpoint, lambda settings: settings.stats_api_rate_limit)


def registration_rate_limit(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Apply REGISTRATION_RATE_LIMIT (per client address) to a route."""
    return _limited(endpoint, lambda settings: settings.registration_rate_limit)
