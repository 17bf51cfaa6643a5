"""Per-user token buckets: a burst of RATE_LIMIT_BURST, refilled at RATE_LIMIT_PER_MINUTE.

Turns *reserve* a token (:meth:`RateLimiter.reserve`): a turn over the rate waits until its token
is due, so the user's messages are answered later, in order, never dropped. Refusal notices (the
allowlist) *check* for one (:meth:`RateLimiter.check`): a refused user is told once per empty
bucket, not once per message. Buckets live in the process (each replica limits on its own: with N
webhook replicas a user may get up to N times the rate, which is still bounded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

_PRUNE_AT = 50_000


@dataclass
class _Bucket:
    tokens: float
    updated: float
    told: bool = False


@dataclass(frozen=True)
class Decision:
    """Whether the message may go on, and whether to tell the user they were refused."""

    allowed: bool
    notify: bool = False
    retry_after_seconds: float = 0.0


class RateLimiter:
    """Token-bucket limiter keyed by user id."""

    def __init__(self, *, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.rate = per_minute / 60
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def check(self, user_id: int) -> Decision:
        """Take a token for ``user_id`` if there is one."""
        bucket = self._refilled(user_id)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.told = False
            return Decision(True)
        notify = not bucket.told
        bucket.told = True
        return Decision(False, notify=notify, retry_after_seconds=(1 - bucket.tokens) / self.rate)

    def reserve(self, user_id: int) -> float:
        """Book the next token for ``user_id``; returns the seconds until it is due (0: now).

        The bucket may go into debt, so reservations queue: the second waiting turn waits for the
        token after the first one's.
        """
        bucket = self._refilled(user_id)
        bucket.tokens -= 1
        return 0.0 if bucket.tokens >= 0 else -bucket.tokens / self.rate

    def _refilled(self, user_id: int) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[user_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _prune(self, now: float) -> None:
        """Forget users whose bucket has refilled completely (they are indistinguishable from new)."""
        full_after = self.burst / self.rate
        self._buckets = {uid: b for uid, b in self._buckets.items() if now - b.updated < full_after}
