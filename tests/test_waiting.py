"""parley_testing.waiting: the one way a test waits for something."""

from __future__ import annotations

import itertools

import pytest

from parley_testing.waiting import WaitTimeoutError, eventually, wait_for


def test_wait_for_returns_the_first_truthy_value_and_retries_exceptions() -> None:
    calls = itertools.count()

    def probe() -> int:
        n = next(calls)
        if n == 0:
            raise ConnectionError("not listening yet")
        return n if n >= 2 else 0

    assert wait_for(probe, "the third call", timeout=5, interval=0) == 2


def test_wait_for_fails_naming_what_and_the_last_value() -> None:
    with pytest.raises(WaitTimeoutError, match=r"waiting for the impossible; last value: \[\]\nthe log"):
        wait_for(lambda: [], "the impossible", timeout=0.05, interval=0.01, describe=lambda: "the log")


def test_an_exception_outside_retry_on_ends_the_wait_at_once() -> None:
    def probe() -> bool:
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="the process died"):
        wait_for(probe, "a dead process", timeout=30, retry_on=(OSError,))


async def test_eventually_awaits_async_probes_and_names_the_last_exception() -> None:
    async def probe() -> str:
        raise ValueError("still empty")

    with pytest.raises(WaitTimeoutError, match="last exception: ValueError: still empty"):
        await eventually(probe, "a value", timeout=0.05, interval=0.01)
    assert await eventually(lambda: "sync too", "a sync probe", timeout=1) == "sync too"
