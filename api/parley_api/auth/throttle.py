"""Login throttling per username and per client address (limits, moving window).

What is counted is a password check that reaches bcrypt: a credential the verification cache
already knows costs nothing. The check is *reserved* before bcrypt runs — one atomic
test-and-count in the storage — so forty parallel guesses against a budget of five get five
bcrypt checks and thirty-five 429s, never forty checks recorded afterwards. Once a username or an
address has used its budget, every further attempt for it is refused with 429 before the password
is looked at, so guessing cannot go on at any speed, not even against the cache. The counters live
in the same storage as the rate limiter (RATE_LIMIT_STORAGE_URI, ``plumbing.counters``), so with
Redis the budget is shared by all replicas.
"""

from __future__ import annotations

import hashlib

from limits import RateLimitItem, parse_many
from limits.strategies import MovingWindowRateLimiter

from parley_api.plumbing.counters import Counters

NAMESPACE = "parley-login-failures"


class LoginThrottledError(Exception):
    """Too many failed logins for this username or address; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"too many failed logins ({scope})")
        self.retry_after = retry_after
        self.scope = scope


class LoginThrottle:
    """Counts failed logins and refuses attempts over the per-username or per-address limits."""

    def __init__(self, *, storage_uri: str, per_username: str, per_address: str) -> None:
        self._counters = Counters(
            storage_uri, MovingWindowRateLimiter, unavailable_event="login_throttle_storage_unavailable"
        )
        self._per_username = parse_many(per_username)
        self._per_address = parse_many(per_address)

    def _buckets(self, username: str, address: str) -> list[tuple[str, RateLimitItem, tuple[str, ...]]]:
        # Hashed, so arbitrary client input never becomes a storage key of arbitrary length.
        user_key = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return [
            *(("username", item, (NAMESPACE, "user", user_key)) for item in self._per_username),
            *(("address", item, (NAMESPACE, "addr", address)) for item in self._per_address),
        ]

    async def check(self, username: str, address: str) -> None:
        """Raise LoginThrottledError when the username or the address has no failures left."""
        for scope, item, keys in self._buckets(username, address):
            if not await self._counters.test(item, *keys):
                raise LoginThrottledError(await self._counters.retry_after(item, *keys), scope)

    async def reserve(self, username: str, address: str) -> None:
        """Count one password check against the username and the address before it runs; raise
        LoginThrottledError (counting nothing further) when either budget is used up."""
        for scope, item, keys in self._buckets(username, address):
            if not await self._counters.hit(item, *keys):
                raise LoginThrottledError(await self._counters.retry_after(item, *keys), scope)

    async def forgive(self, username: str) -> None:
        """The right password was given: forget the username's counted checks.

        Successful checks are counted too (the reservation comes before bcrypt knows the answer),
        and each replica misses its cache once per credential, more with the cache off: without
        this, a rollout of eight replicas would lock an account out with its own password. The
        address budget is kept, so guessing from one place stays bounded."""
        for scope, item, keys in self._buckets(username, ""):
            if scope == "username":
                await self._counters.clear(item, *keys)
