"""Per-user locks serialize one user, not everybody, and are forgotten when idle."""

from __future__ import annotations

import asyncio

from parley_bot.services.locks import UserLocks


async def test_same_user_runs_in_order_other_users_run_alongside() -> None:
    locks = UserLocks()
    order: list[str] = []
    gate = asyncio.Event()

    async def turn(user: int, name: str) -> None:
        async with locks.hold(user):
            order.append(f"{name} start")
            if name == "a1":
                await gate.wait()
            order.append(f"{name} end")

    first = asyncio.create_task(turn(1, "a1"))
    await asyncio.sleep(0)
    second = asyncio.create_task(turn(1, "a2"))
    other = asyncio.create_task(turn(2, "b1"))
    await other
    gate.set()
    await asyncio.gather(first, second)

    assert order == ["a1 start", "b1 start", "b1 end", "a1 end", "a2 start", "a2 end"]
    assert len(locks) == 0
