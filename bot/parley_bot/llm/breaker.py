"""A circuit breaker per model: after N consecutive failures the model is skipped for a cool-down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from parley_bot import metrics

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """closed -(N failures)-> open -(cool-down)-> half_open: one trial; success closes, failure reopens."""

    def __init__(
        self,
        model: str,
        *,
        failures: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.failure_threshold = failures
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> State:
        """Where the breaker is now."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a request may go to the model now (in half-open state: one trial at a time)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        """The model answered: close."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False
        metrics.LLM_CIRCUIT_OPEN.labels(model=self.model).set(0)

    def record_failure(self) -> None:
        """The model failed: count, and open (again) at the threshold or after a failed trial."""
        self._failures += 1
        if self._trial_running or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._trial_running = False
            metrics.LLM_CIRCUIT_OPEN.labels(model=self.model).set(1)

    def release_trial(self) -> None:
        """A half-open trial ended without a verdict (e.g. the prompt was too long): allow another."""
        self._trial_running = False
