"""The circuit breaker: opens after N failures, one trial after the cool-down."""

from __future__ import annotations

from parley_bot.llm.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> str:
    """The state, read fresh (mypy would otherwise keep an earlier narrowing of the property)."""
    return breaker.state


def test_opens_after_failures_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=2, cooldown_seconds=30, clock=clock)

    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert state_of(breaker) == "open"
    assert not breaker.allow()

    clock.now += 30
    assert state_of(breaker) == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert state_of(breaker) == "open"

    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert state_of(breaker) == "closed"
    assert breaker.allow()


def test_released_trial_lets_another_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=1, cooldown_seconds=1, clock=clock)
    breaker.record_failure()
    clock.now += 1

    assert breaker.allow()
    breaker.release_trial()
    assert breaker.allow()
