"""Long polling that confirms an update to Telegram only after the bot has accepted it.

aiogram's own polling moves the offset past an update as soon as it is handed to a handler, so an
update a crash or a database outage interrupts is gone. Here each batch from getUpdates is fed to
the Dispatcher and the next offset moves past an update only once it is accepted (stored, see
``acceptance``). When an update is deferred — the database is unavailable — the offset stays at
it, /ready turns false and polling pauses with backoff; Telegram keeps unconfirmed updates for
24 hours and delivers them again, together with whatever arrived meanwhile. Updates accepted after
a deferred one come again too and are recognised as duplicates.

A user's updates of one batch are accepted one after the other (their order is the order of the
conversation); different users' in parallel. Exactly one process may poll: a second one gets 409
Conflict from Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.methods import GetUpdates
from aiogram.types import Update

from parley_bot import metrics
from parley_bot.intake.acceptance import Acceptance, settle_when_done
from parley_bot.lifecycle import Lifecycle
from parley_core.logging import get_logger

log = get_logger(__name__)

BACKOFF_START_SECONDS = 0.5
FETCH_ERROR_BACKOFF_MAX_SECONDS = 30.0


def _sender(update: Update) -> int | None:
    """The Telegram user an update comes from (whose updates must keep their order)."""
    event = update.event
    user = getattr(event, "from_user", None)
    return user.id if user is not None else None


@dataclass(kw_only=True, eq=False)
class PollingIntake:
    """getUpdates -> accept each update -> confirm (the next offset) -> getUpdates ..."""

    bot: Bot
    dp: Dispatcher
    lifecycle: Lifecycle
    polling_timeout: int
    backoff_max_seconds: float
    feed: Callable[[Update, Acceptance], Coroutine[Any, Any, Any]]
    # Every update below it is accepted and confirmed (or will be).
    offset: int | None = field(default=None, init=False)

    async def run(self) -> None:
        """Poll until the process drains; raises only for a token Telegram rejects."""
        allowed = self.dp.resolve_used_update_types()
        fetch_delay = store_delay = BACKOFF_START_SECONDS
        stop = asyncio.create_task(self.lifecycle.stop_requested.wait())
        try:
            while not self.lifecycle.draining:
                method = GetUpdates(offset=self.offset, timeout=self.polling_timeout, allowed_updates=allowed)
                fetch = asyncio.create_task(self.bot(method, request_timeout=self.polling_timeout + 30))
                await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await fetch
                    return  # what that call returned is unconfirmed: Telegram delivers it again
                try:
                    updates = fetch.result()
                except TelegramUnauthorizedError:
                    raise
                except Exception as exc:  # 409 from a second poller, Telegram unreachable, ...
                    log.warning(
                        "get_updates_failed", error=type(exc).__name__, retry_in=round(fetch_delay, 1)
                    )
                    await self._pause(fetch_delay)
                    fetch_delay = min(fetch_delay * 2, FETCH_ERROR_BACKOFF_MAX_SECONDS)
                    continue
                fetch_delay = BACKOFF_START_SECONDS
                if not updates:
                    continue
                deferred = await self._accept_batch(updates)
                if deferred is None:
                    self.offset = updates[-1].update_id + 1
                    if self.lifecycle.intake_paused:
                        log.info("intake_resumed")
                    self._set_paused(False)
                    store_delay = BACKOFF_START_SECONDS
                    continue
                self.offset = deferred
                if not self.lifecycle.intake_paused:
                    log.warning("intake_paused", reason="database unavailable", first_unconfirmed=deferred)
                self._set_paused(True)
                await self._pause(store_delay)
                store_delay = min(store_delay * 2, self.backoff_max_seconds)
        finally:
            stop.cancel()

    async def _accept_batch(self, updates: list[Update]) -> int | None:
        """Feed a batch; returns the first update id that was not accepted, or None."""
        chains: dict[int | None, list[Update]] = {}
        singles: list[list[Update]] = []
        for update in updates:
            sender = _sender(update)
            if sender is None:
                singles.append([update])
            else:
                chains.setdefault(sender, []).append(update)
        results = await asyncio.gather(*(self._accept_chain(chain) for chain in [*chains.values(), *singles]))
        deferred = [update_id for update_id in results if update_id is not None]
        return min(deferred) if deferred else None

    async def _accept_chain(self, chain: list[Update]) -> int | None:
        """Accept one user's updates in order; stop at the first deferred one (the rest wait with it)."""
        for update in chain:
            acceptance = Acceptance()
            task = asyncio.create_task(self.feed(update, acceptance))
            self.lifecycle.track(task)
            settle_when_done(task, acceptance)
            if not await acceptance.wait():
                return update.update_id
        return None

    def _set_paused(self, paused: bool) -> None:
        self.lifecycle.intake_paused = paused
        metrics.BOT_INTAKE_PAUSED.set(1 if paused else 0)

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless the process starts draining meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.lifecycle.stop_requested.wait(), seconds)

    async def confirm(self) -> None:
        """Tell Telegram that everything accepted is done (on shutdown), so a successor skips it."""
        if self.offset is None:
            return
        try:
            await self.bot(GetUpdates(offset=self.offset, limit=1, timeout=0))
            log.info("shutdown_step", step="confirmed updates", up_to=self.offset - 1)
        except Exception as exc:  # they will be re-delivered and recognised as duplicates instead
            log.warning("confirm_updates_failed", error=type(exc).__name__)
