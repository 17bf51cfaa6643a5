"""Outgoing pacing within Telegram's limits: ~30 messages/s per bot, 1/s per chat, 20/min per group.

A send waits in two steps: first for its chat's slot (1 s after the chat's previous message, 3 s in
a group), then for a bot-wide slot: at most 30 messages in any one second, a sliding window, so 30
answers that finish together go out together and only the 31st waits. Booking both at once would let
one chat that must wait a second hold back every other chat's messages behind it; spacing every
message 1/30 s apart would queue simultaneous answers Telegram accepts. Slots are booked in arrival
order, so a chat's messages keep their order; a chat whose message was held back by the bot-wide
limit has its next slot moved accordingly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

_PRUNE_AT = 10_000  # chats remembered before forgetting those whose slot has passed


class Pacer:
    """Paces outgoing messages; a rate of 0 turns that limit off."""

    def __init__(
        self,
        *,
        global_per_second: float,
        chat_interval_seconds: float,
        group_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # The bot-wide limit as "at most `_global_burst` sends in any `_global_window` seconds".
        self._global_burst = max(math.floor(global_per_second), 1) if global_per_second > 0 else 0
        self._global_window = self._global_burst / global_per_second if global_per_second > 0 else 0.0
        self._global_sends: deque[float] = deque(maxlen=self._global_burst or 1)  # latest booked slots
        self._chat_interval = chat_interval_seconds
        self._group_interval = 60 / group_per_minute if group_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._chat_next: dict[int, float] = {}

    def reserve_chat(self, chat_id: int) -> float:
        """Book ``chat_id``'s next slot; returns how long to wait for it."""
        now = self._clock()
        interval = self._interval(chat_id)
        if not interval:
            return 0.0
        slot = max(now, self._chat_next.get(chat_id, 0.0))
        if len(self._chat_next) >= _PRUNE_AT:
            self._chat_next = {chat: at for chat, at in self._chat_next.items() if at > now}
        self._chat_next[chat_id] = slot + interval
        return slot - now

    def reserve_send(self, chat_id: int) -> float:
        """Book the next bot-wide slot (call when the chat's slot has come); returns the wait."""
        now = self._clock()
        if not self._global_burst:
            return 0.0
        sends = self._global_sends
        slot = now if len(sends) < self._global_burst else max(now, sends[0] + self._global_window)
        sends.append(slot)  # drops the oldest: only the last `_global_burst` slots matter
        interval = self._interval(chat_id)
        if interval and slot > now:
            self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), slot + interval)
        return slot - now

    def _interval(self, chat_id: int) -> float:
        return self._group_interval if chat_id < 0 else self._chat_interval

    async def wait(self, chat_id: int) -> None:
        """Sleep until this chat may receive its next message."""
        for reserve in (self.reserve_chat, self.reserve_send):
            delay = reserve(chat_id)
            if delay > 0:
                await self._sleep(delay)
