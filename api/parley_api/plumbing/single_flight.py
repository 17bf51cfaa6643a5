"""Concurrent calls for the same key share one run of the work (the first caller runs it).

Used where many requests want the same slow answer at once: one bcrypt check of a credential, one
computation of a period's figures. A failure reaches every waiter and is not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one run of the work per key at a time.

    The work runs in a task of its own, so a caller that goes away (a client disconnecting cancels
    its request) does not cancel it for the others waiting on it.
    """

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    def running(self, key: K) -> bool:
        """Whether work for ``key`` is under way."""
        return key in self._running

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The result of ``work()``, or of the run already under way for ``key``."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(_call(work))
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waited for is not logged as lost


async def _call(work: Callable[[], Awaitable[V]]) -> V:
    return await work()
