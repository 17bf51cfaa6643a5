"""What the process knows about its own life: draining, in-flight updates, the update loop's heartbeat.

Shared by the health server (/health, /ready), the intake and the turns (which register every
update and turn in flight) and the runner (which drains on SIGTERM).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType

from parley_bot import metrics


class Lifecycle:
    """State of this bot process; every method is cheap and safe to call from any task."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.draining = False
        self.stop_requested = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.last_poll_at: float | None = None
        self.update_loop: asyncio.Task[Any] | None = None
        # False from a statement that failed because the database was unavailable until the next
        # one that worked; /ready reports it, and intake pauses meanwhile.
        self.database_available = True
        self.intake_paused = False
        # Why the process does not take updates yet; None once the schema is migrated and the first
        # heartbeat ran. /ready reports it and the webhook answers 503 meanwhile.
        self.starting: str | None = "starting"

    @property
    def uptime_seconds(self) -> float:
        """Seconds since start."""
        return round(time.monotonic() - self.started_at, 3)

    def request_stop(self) -> None:
        """Begin a graceful shutdown (SIGTERM/SIGINT or a test)."""
        self.draining = True
        self.stop_requested.set()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` (an update being handled, a turn being answered) as in flight until it ends."""
        self.inflight.add(task)
        metrics.BOT_INFLIGHT_UPDATES.set(len(self.inflight))
        task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Task[Any]) -> None:
        self.inflight.discard(task)
        metrics.BOT_INFLIGHT_UPDATES.set(len(self.inflight))

    def database_failed(self) -> None:
        """A statement failed because the database was unavailable."""
        self.database_available = False
        metrics.DATABASE_UP.set(0)

    def database_ok(self) -> None:
        """A statement worked."""
        self.database_available = True
        metrics.DATABASE_UP.set(1)

    async def wait_idle(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for in-flight updates; returns how many were still running."""
        pending = {task for task in self.inflight if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        return len(pending)

    def update_loop_alive(self, *, stale_after: float) -> bool:
        """Whether the update loop runs and has completed a getUpdates call recently (polling mode)."""
        if self.update_loop is None:
            return True  # webhook mode: updates arrive through the HTTP server that answers this check
        if self.update_loop.done():
            return False
        last = self.last_poll_at if self.last_poll_at is not None else self.started_at
        return time.monotonic() - last < stale_after


class PollingHeartbeat(BaseRequestMiddleware):
    """Bot-session middleware noting each completed getUpdates call (the update loop's pulse).

    Any completed call keeps /health green: a restart does not cure a Telegram error (a second
    poller's 409, a revoked token), so it must not trigger one. Only successful calls move
    ``bot_update_loop_last_success_timestamp_seconds``, which the ParleyBotUpdateLoopStalled alert
    watches, so those errors still page someone.
    """

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            response = await make_request(bot, method)
        finally:
            if isinstance(method, GetUpdates):
                self.lifecycle.last_poll_at = time.monotonic()
        if isinstance(method, GetUpdates):
            metrics.BOT_LAST_SUCCESSFUL_POLL.set_to_current_time()
        return response
