"""SingleFlight: one run per key, shared by every caller, independent of any one caller."""

from __future__ import annotations

import asyncio

import pytest

from parley_api.plumbing.single_flight import SingleFlight


async def test_concurrent_callers_share_one_run_and_a_later_call_runs_again() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return runs

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(10)))
    assert results == [1] * 10
    assert await flights.run("k", work) == 2
    assert not flights.running("k")


async def test_a_caller_that_goes_away_does_not_cancel_the_run_for_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    leader = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    leader.cancel()  # the first client disconnected
    release.set()

    assert await waiter == "done"
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    attempts = 0

    async def work() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise RuntimeError("database unavailable")
        return attempts

    outcomes = await asyncio.gather(*(flights.run("k", work) for _ in range(3)), return_exceptions=True)
    assert [type(o) for o in outcomes] == [RuntimeError] * 3
    assert await flights.run("k", work) == 2
