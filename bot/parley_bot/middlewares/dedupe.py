"""Outer middleware dropping an update id seen moments ago (webhook retries, re-polled batches).

This is the cheap first line; the durable one is the unique ``messages.telegram_update_id``,
which also catches duplicates after a restart or on another replica.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from parley_bot import metrics
from parley_core.logging import get_logger

log = get_logger(__name__)


class DedupeMiddleware(BaseMiddleware):
    """Remembers the last ``size`` update ids of this process."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        if event.update_id in self._seen:
            metrics.BOT_UPDATES_DUPLICATE.inc()
            log.info("update_duplicate", update_id=event.update_id)
            return None
        self._seen[event.update_id] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return await handler(event, data)
