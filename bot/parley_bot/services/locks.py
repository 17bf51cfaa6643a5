"""Per-user serialization inside one process (the DB turn lease covers several replicas)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class UserLocks:
    """One asyncio.Lock per user with waiters; forgotten as soon as nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        """Run the block while no other block of the same user runs in this process (FIFO)."""
        lock, users = self._locks.get(user_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_id]
            if users <= 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
