"""Whether an update is safely stored, so Telegram may be told it arrived.

Telegram forgets an update once it is confirmed — in polling mode by the next getUpdates offset,
in webhook mode by a 200 answer — not once a handler finishes. So each update carries an
:class:`Acceptance`: a text message is accepted when it is stored and queued, a command when it
has run; anything the bot ignores, at once. The intake confirms an update only when it is accepted.

:class:`AcceptanceMiddleware` settles it around the handlers: an update whose handler fails
because the database is unavailable is *deferred* — not confirmed, no apology sent: Telegram keeps
it and the intake tries again once the database is back. Any other failure (a bug, bad data)
accepts it, so one poisonous update cannot stop the queue; the error handler apologises.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from parley_bot import metrics
from parley_bot.lifecycle import Lifecycle
from parley_bot.middlewares.handler import Handler
from parley_core.db import is_database_unavailable
from parley_core.logging import get_logger

log = get_logger(__name__)


class Acceptance:
    """Settled once per update: accepted (confirm it) or deferred (Telegram must deliver it again)."""

    def __init__(self) -> None:
        self._settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def settled(self) -> bool:
        """Whether it has been accepted or deferred."""
        return self._settled.done()

    def accept(self) -> None:
        """The update is stored (or needs nothing stored): it may be confirmed."""
        if not self._settled.done():
            self._settled.set_result(True)

    def defer(self) -> None:
        """The update could not be stored now: it must not be confirmed."""
        if not self._settled.done():
            self._settled.set_result(False)

    async def wait(self, timeout: float | None = None) -> bool:
        """True once accepted; False if deferred or not settled within ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._settled), timeout)
        except TimeoutError:
            return False


def settle_when_done(task: asyncio.Task[Any], acceptance: Acceptance) -> None:
    """Settle ``acceptance`` when the update's handling ``task`` ends without having settled it.

    Cancelled (a shutdown) means nothing was stored; a database outage that escaped means the
    same; anything else is accepted, so a failing update is not delivered again and again.
    """

    def settle(done: asyncio.Task[Any]) -> None:
        if done.cancelled() or ((error := done.exception()) is not None and is_database_unavailable(error)):
            acceptance.defer()
        else:
            acceptance.accept()

    task.add_done_callback(settle)


class AcceptanceMiddleware(BaseMiddleware):
    """Outer middleware: settles each update's Acceptance and drops updates accepted moments ago.

    The in-process memory of accepted update ids (the last ``size``, for ``memory_seconds``) is the
    cheap first line against re-deliveries (a batch fetched again after a database outage); the
    durable one is ``telegram_updates``, which also knows when Telegram re-uses an id.
    """

    def __init__(self, lifecycle: Lifecycle, size: int = 10_000, memory_seconds: float = 600.0) -> None:
        self.lifecycle = lifecycle
        self.size = size
        self.memory_seconds = memory_seconds
        self._accepted: OrderedDict[int, float] = OrderedDict()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        acceptance: Acceptance = data.setdefault("acceptance", Acceptance())
        seen_at = self._accepted.get(event.update_id)
        if seen_at is not None and time.monotonic() - seen_at < self.memory_seconds:
            metrics.BOT_UPDATES_DUPLICATE.inc()
            log.info("update_duplicate", update_id=event.update_id)
            acceptance.accept()
            return None
        try:
            result = await handler(event, data)
        except Exception as exc:
            if not acceptance.settled and is_database_unavailable(exc):
                self.lifecycle.database_failed()
                metrics.BOT_UPDATES_DEFERRED.inc()
                log.warning("update_deferred", update_id=event.update_id, error=type(exc).__name__)
                acceptance.defer()
                return None
            self._remember(event.update_id)
            acceptance.accept()
            raise
        self._remember(event.update_id)
        acceptance.accept()
        return result

    def _remember(self, update_id: int) -> None:
        self._accepted[update_id] = time.monotonic()
        self._accepted.move_to_end(update_id)
        if len(self._accepted) > self.size:
            self._accepted.popitem(last=False)
