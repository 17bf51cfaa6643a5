"""The per-user token bucket."""

from __future__ import annotations

from parley_bot.services.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_and_one_notice_per_empty_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(burst=2, per_minute=6, clock=clock)  # one token per 10 s

    decisions = [limiter.check(1) for _ in range(4)]
    clock.now += 10
    refilled = limiter.check(1)
    after = limiter.check(1)

    assert [d.allowed for d in decisions] == [True, True, False, False]
    assert [d.notify for d in decisions[2:]] == [True, False]
    assert round(decisions[2].retry_after_seconds) == 10
    assert refilled.allowed
    assert not after.allowed
    assert after.notify  # a new empty bucket after a granted message is told again
    assert limiter.check(2).allowed  # users are independent
