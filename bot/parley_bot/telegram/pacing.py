"""Outgoing pacing within Telegram's limits: ~30 messages/s per bot, 1/s per chat, 20/min per group.

Each send reserves the earliest slot that respects the bot-wide interval and its chat's interval,
then sleeps until it. Reservations are made in arrival order, so a chat's messages keep their order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_PRUNE_AT = 10_000  # chats remembered before forgetting those whose slot has passed


class Pacer:
    """Spaces outgoing messages; a rate of 0 turns that limit off."""

    def __init__(
        self,
        *,
        global_per_second: float,
        chat_interval_seconds: float,
        group_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._global_interval = 1 / global_per_second if global_per_second > 0 else 0.0
        self._chat_interval = chat_interval_seconds
        self._group_interval = 60 / group_per_minute if group_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._global_next = 0.0
        self._chat_next: dict[int, float] = {}

    def reserve(self, chat_id: int) -> float:
        """Book the next slot for ``chat_id``; returns how long to wait for it."""
        now = self._clock()
        interval = self._group_interval if chat_id < 0 else self._chat_interval
        slot = max(now, self._global_next, self._chat_next.get(chat_id, 0.0) if interval else 0.0)
        if self._global_interval:
            self._global_next = slot + self._global_interval
        if interval:
            if len(self._chat_next) >= _PRUNE_AT:
                self._chat_next = {chat: at for chat, at in self._chat_next.items() if at > now}
            self._chat_next[chat_id] = slot + interval
        return slot - now

    async def wait(self, chat_id: int) -> None:
        """Sleep until this chat may receive its next message."""
        delay = self.reserve(chat_id)
        if delay > 0:
            await self._sleep(delay)
