"""The process's heartbeat, and the work nobody alive is doing.

Every BOT_HEARTBEAT_SECONDS one statement refreshes this process's ``bot_instances`` row and lists
users with queued messages or unsent replies whose lease is free — released, held by this process
without a worker (a turn that failed), or held by a process that stopped heartbeating (kill -9,
OOM, a lost node). Each gets a worker here. The first heartbeat runs before any update is taken,
and in polling mode — where exactly one process runs — every earlier process is declared dead at
start, so a restarted bot resumes its predecessor's turns at once. Once an hour, update ids older
than the de-duplication window and long-gone processes are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.lifecycle import Lifecycle
from parley_bot.services.database import execute
from parley_bot.services.instance import Instance
from parley_bot.services.turns import TurnRunner
from parley_core.db import is_database_unavailable
from parley_core.logging import get_logger
from parley_core.repositories import bot_instances
from parley_core.settings import BotSettings

log = get_logger(__name__)

RESUME_BATCH = 200  # users resumed per heartbeat at most
PRUNE_EVERY_SECONDS = 3600.0


@dataclass(kw_only=True, eq=False)
class Recovery:
    """Heartbeat, resume of abandoned work, pruning."""

    engine: AsyncEngine
    instance: Instance
    runner: TurnRunner
    lifecycle: Lifecycle
    settings: BotSettings
    _predecessors_forgotten: bool = field(init=False)
    _failing: bool = field(default=False, init=False)
    _pruned_at: float = field(default=0.0, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._predecessors_forgotten = self.instance.mode != "polling"

    async def start(self) -> None:
        """First heartbeat (and resume) now, then every BOT_HEARTBEAT_SECONDS in the background."""
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name="recovery")

    async def _loop(self) -> None:
        while not self.lifecycle.draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.lifecycle.stop_requested.wait(), self.settings.bot_heartbeat_seconds
                )
            if not self.lifecycle.draining:
                await self.beat()

    async def beat(self) -> None:
        """One heartbeat; starts workers for abandoned work. Never raises for a database outage."""
        try:
            if not self._predecessors_forgotten:
                forgotten = await execute(
                    self.engine, lambda conn: bot_instances.forget_others(conn, holder=self.instance.id)
                )
                self._predecessors_forgotten = True
                if forgotten:
                    log.info("predecessors_forgotten", count=forgotten)
            users = await execute(
                self.engine,
                lambda conn: bot_instances.heartbeat_and_find_work(
                    conn,
                    lease=self.instance.lease_terms(),
                    mode=self.instance.mode,
                    hostname=self.instance.hostname,
                    limit=RESUME_BATCH,
                ),
            )
        except Exception as exc:
            if not is_database_unavailable(exc):
                log.error("heartbeat_failed", error=type(exc).__name__, exc_info=exc)
            elif not self._failing:
                log.warning("heartbeat_failed", error=type(exc).__name__)
            self._failing = True
            self.instance.heartbeat_failed()
            self.lifecycle.database_failed()
            return
        if self._failing:
            log.info("heartbeat_recovered")
        self._failing = False
        self.instance.heartbeat_succeeded()
        self.lifecycle.database_ok()
        for user_id in users:
            self.runner.resume(user_id)
        await self._prune()

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = time.monotonic()
        try:
            updates, instances = await execute(
                self.engine,
                lambda conn: bot_instances.prune(
                    conn, dedupe_seconds=self.settings.bot_update_dedupe_seconds
                ),
            )
        except Exception as exc:  # pruning is housekeeping; the next hour tries again
            log.warning("prune_failed", error=type(exc).__name__)
            return
        if updates or instances:
            log.info("pruned", update_ids=updates, instances=instances)

    async def stop(self) -> None:
        """Stop heartbeating; give back this process's leases and remove its row (graceful stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await execute(self.engine, lambda conn: bot_instances.stop(conn, holder=self.instance.id))
        except Exception as exc:  # the row goes stale instead; others take over after the timeout
            log.warning("instance_not_removed", error=type(exc).__name__)
