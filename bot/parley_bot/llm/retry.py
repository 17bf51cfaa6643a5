"""When to try a model again for the same message: attempts, timeouts, the deadline, backoff.

The SDK's own retries are off: the client applies this policy (see ``client``), so the timing of one
user message's attempts is in one place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MIN_ATTEMPT_SECONDS = 0.5  # an attempt with less time than this left is not worth starting


@dataclass(frozen=True)
class RetryPolicy:
    """Timing of one user message's attempts."""

    attempts_per_model: int
    timeout_seconds: float
    deadline_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float

    def backoff(self, retry: int) -> float:
        """Full-jitter exponential backoff before retry number ``retry`` (0-based)."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2**retry)
        return random.uniform(0, ceiling)  # noqa: S311  (jitter, not cryptography)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds before retry number ``retry``: the backoff, or the server's Retry-After if longer."""
        delay = self.backoff(retry)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
