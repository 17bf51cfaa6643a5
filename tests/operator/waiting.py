"""Polling helpers of the operator's process tests: wait for a condition or an api_users row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.repositories import api_users
from parley_core.repositories.api_users import OwnedApiUserRecord
from tests.operator.conftest import DEADLINE

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE) -> T:
    """Await ``check()`` until it gives something truthy; fail naming ``what`` at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
        await asyncio.sleep(0.2)


async def row_of(engine: AsyncEngine, username: str) -> OwnedApiUserRecord | None:
    """The api_users row of ``username`` with its owner columns."""
    async with engine.connect() as conn:
        return await api_users.get_with_owner(conn, username)


async def wait_row(
    engine: AsyncEngine, username: str, check: Callable[[OwnedApiUserRecord], bool] = lambda _: True
) -> OwnedApiUserRecord:
    """Wait until the row exists and satisfies ``check``."""

    async def found() -> OwnedApiUserRecord | None:
        row = await row_of(engine, username)
        return row if row is not None and check(row) else None

    return await eventually(found, f"the row of {username}")
