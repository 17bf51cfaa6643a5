"""Answering users: one worker per user at a time, from stored messages to a delivered answer.

A user's text message is accepted by one statement (``turns.accept_message``) that stores it,
queues it in the inbox and — if nobody is answering this user — gives this process the user's
lease. The lease holder runs the user's worker, which repeats turns while work waits:

1. replies stored earlier and not yet delivered (a resumed turn) are sent first;
2. waiting messages older than BOT_STALE_MESSAGE_SECONDS get "I could not answer this in time";
3. a burst (or a paste Telegram split) is gathered for BOT_COALESCE_SECONDS into one question;
4. the per-user rate limit may make the turn wait — the messages stay queued, none is dropped;
5. the model answers (typing indicator, streaming previews in private chats), with no database
   connection held;
6. the answer is stored with its outbox row in one statement — waiting for the database if it
   is down — and only then sent, part by part (``delivery``).

Messages that arrive meanwhile are queued and answered by the same worker next. Another process's
user is left to it; if that process dies, ``recovery`` finds its work and starts a worker here.

This module runs the workers and hands the lease over; the steps of one turn are in ``turn_steps``,
asking the model (steps 4 and 5) in ``answering``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.lifecycle import Lifecycle
from parley_bot.llm import LLMClient
from parley_bot.services.answering import Answerer
from parley_bot.services.budgets import BudgetGuard
from parley_bot.services.database import execute, persist
from parley_bot.services.delivery import DeliveredReplies, Delivery
from parley_bot.services.instance import Instance
from parley_bot.services.stops import Stops
from parley_bot.services.turn_steps import TurnSteps
from parley_bot.telegram import TelegramOutput
from parley_core.logging import bind_context, clear_context, get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import AcceptStatus, Attachment, Retry, UserWork
from parley_core.repositories.users import TelegramProfile
from parley_core.settings import BotSettings

log = get_logger(__name__)

QUARANTINE_SECONDS = 60.0  # a user whose turn failed unexpectedly is not resumed for this long
FINISHING_WAIT_SECONDS = 2.0  # longest a new message waits for the user's worker to end


@dataclass
class _Finishing:
    """A worker between storing its last answer and ending: which replies it is delivering."""

    outbox_ids: set[uuid.UUID]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TurnRunner:
    """Runs the workers of the users whose lease this process holds."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        llm: LLMClient,
        output: TelegramOutput,
        settings: BotSettings,
        instance: Instance,
        lifecycle: Lifecycle,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.instance = instance
        self.lifecycle = lifecycle
        # Polling mode runs one process: a lease stays with it after a turn (no write to give it back,
        # and the user's next message needs none to take it), and delivered replies are forgotten in
        # batches. Several webhook replicas give the lease back, so whichever replica receives the
        # next message can answer it.
        self.sticky_leases = settings.bot_mode == "polling"
        # Several webhook replicas: a stop may reach another replica than the one writing the answer.
        self.stops = Stops(engine=engine, broadcast=not self.sticky_leases)
        self.delivered = DeliveredReplies(engine=engine, lifecycle=lifecycle) if self.sticky_leases else None
        delivery = Delivery(
            engine=engine, output=output, lifecycle=lifecycle, holder=instance.id, delivered=self.delivered
        )
        self.steps = TurnSteps(
            engine=engine,
            settings=settings,
            lifecycle=lifecycle,
            holder=instance.id,
            delivery=delivery,
            answerer=Answerer(engine=engine, llm=llm, output=output, settings=settings, stops=self.stops),
            budgets=BudgetGuard(settings),
            on_last_delivery=self._finishing_now,
        )
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._woken: set[int] = set()
        # Users whose worker has stored its answer and is sending it (see `accept`).
        self._finishing: dict[int, _Finishing] = {}
        # What a message accepted during that phase found waiting: its worker's next turn.
        self._handoff: dict[int, UserWork] = {}
        self._quarantined: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._workers)

    # ---- entry points ----------------------------------------------------------------------

    async def accept(
        self,
        *,
        profile: TelegramProfile,
        update_id: int,
        chat_id: int,
        telegram_message_id: int,
        sent_at: datetime,
        text: str,
        attachment: Attachment | None = None,
    ) -> AcceptStatus:
        """Store and queue a user's message (one statement), then start or wake the user's worker.

        ``attachment``: the file a photo, document or voice message carried (``text`` describes it).

        Raises while the database is unavailable: the message is then not accepted.
        """
        finishing = self._finishing.get(profile.id)
        if finishing is not None and not self.sticky_leases:
            # The worker is about to give the lease back: wait (about a millisecond) rather than
            # queue behind a worker that is ending.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finishing.done.wait(), FINISHING_WAIT_SECONDS)
            finishing = None
        busy = profile.id in self._workers
        accepted = await execute(
            self.engine,
            lambda conn: turns.accept_message(
                conn,
                profile=profile,
                update_id=update_id,
                chat_id=chat_id,
                telegram_message_id=telegram_message_id,
                sent_at=sent_at,
                content=text.replace("\x00", ""),
                attachment=attachment,
                lease=self.instance.lease_terms(),
                default_history=self.settings.history_default_messages,
                max_queued=self.settings.bot_max_queued_messages,
                dedupe_seconds=self.settings.bot_update_dedupe_seconds,
                want_work=not busy or finishing is not None,
            ),
        )
        self.lifecycle.database_ok()
        if accepted.status != "stored":
            return accepted.status
        work = accepted.work
        if work is not None and accepted.message is not None:
            # What this statement saw is the state before the message, plus the message; a reply
            # the finishing worker has just delivered may still show, and is left to it.
            delivered = finishing.outbox_ids if finishing is not None else set()
            work = self._unsent(
                replace(
                    work,
                    pending=[*work.pending, accepted.message],
                    outbox=[item for item in work.outbox if item.id not in delivered],
                )
            )
        if profile.id in self._workers:
            # The running worker looks again before it stops. When this statement ran after its
            # answer was stored, and the worker is still finishing that turn (it has not looked
            # again yet), what the statement found is the worker's next turn as it is.
            still_finishing = finishing is not None and self._finishing.get(profile.id) is finishing
            if still_finishing and work is not None and accepted.leased:
                self._handoff[profile.id] = work
            self._woken.add(profile.id)
        elif accepted.leased:
            self._start(profile.id, work)  # None (claim first) unless this statement read the work
        return "stored"

    async def retry(
        self,
        *,
        user_id: int,
        update_id: int,
        chat_id: int,
        telegram_message_id: int,
        sent_at: datetime,
    ) -> Retry:
        """/retry: queue the user's last question again (the old answer leaves the history), and answer it.

        A turn in progress makes it ``busy``: the user retries once it has ended (a stop ends it at once).
        """
        if user_id in self._workers:
            return Retry("busy")
        async with self.engine.begin() as conn:
            retried = await turns.retry_last_answer(
                conn,
                user_id=user_id,
                update_id=update_id,
                chat_id=chat_id,
                telegram_message_id=telegram_message_id,
                sent_at=sent_at,
                lease=self.instance.lease_terms(),
                dedupe_seconds=self.settings.bot_update_dedupe_seconds,
            )
        if retried.status == "queued":
            metrics.BOT_RETRIES.inc()
            log.info("turn_retried", replaced_answer=str(retried.replaced_answer))
            if user_id in self._workers:  # a message started a worker meanwhile: it looks again
                self._woken.add(user_id)
            elif retried.leased:
                self._start(user_id, None)
            # Otherwise another replica holds the lease and answers it with its next claim.
        return retried

    def resume(self, user_id: int) -> None:
        """Work waits for ``user_id`` and nobody alive is doing it: claim it and answer."""
        if user_id in self._workers or self.lifecycle.draining:
            return
        if time.monotonic() < self._quarantined.get(user_id, 0.0):
            return
        self._quarantined.pop(user_id, None)
        self._start(user_id, None, resumed=True)

    async def idle(self, user_id: int) -> None:
        """Wait until no worker of this process is answering ``user_id`` (/reset waits for it)."""
        while (task := self._workers.get(user_id)) is not None:
            await asyncio.wait({task})

    # ---- the worker ------------------------------------------------------------------------

    def _start(self, user_id: int, work: UserWork | None, *, resumed: bool = False) -> None:
        task = asyncio.create_task(self._work(user_id, work, resumed=resumed), name=f"turns-{user_id}")
        self._workers[user_id] = task
        self.lifecycle.track(task)

    async def _work(self, user_id: int, work: UserWork | None, *, resumed: bool) -> None:
        clear_context()  # the task inherited the ids of the update that started it; it outlives that update
        bind_context(user_id=user_id)
        try:
            while True:
                self._woken.discard(user_id)
                if work is None:
                    work = self._handoff.pop(user_id, None) or await self._claim(user_id)
                    if work is None:
                        return
                    if resumed and (work.pending or work.outbox):
                        metrics.BOT_TURNS_RESUMED.inc()
                        log.info("turn_resumed", pending=len(work.pending), replies=len(work.outbox))
                    resumed = False
                more = await self.steps.run(work)
                work = None
                if not more and user_id not in self._woken:
                    self._workers.pop(user_id, None)
                    return
                self._finished(user_id)
        except asyncio.CancelledError:
            # Shutdown: the messages stay queued and the lease is given back, so a successor (or
            # another replica) answers them.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.steps.release(user_id))
            raise
        except Exception as exc:
            log.error("turn_failed", error=type(exc).__name__, exc_info=exc)
            self._quarantined[user_id] = time.monotonic() + QUARANTINE_SECONDS
            with contextlib.suppress(Exception):
                await self.steps.release(user_id)
        finally:
            self._workers.pop(user_id, None)
            self._handoff.pop(user_id, None)
            self._finished(user_id)

    def _finishing_now(self, user_id: int, outbox_ids: set[uuid.UUID]) -> bool:
        """The worker's answer is stored and it starts the last delivery; returns whether to give the
        lease back at its end (not in polling mode)."""
        self._finishing.setdefault(user_id, _Finishing(outbox_ids=outbox_ids))
        return not self.sticky_leases

    def _finished(self, user_id: int) -> None:
        finishing = self._finishing.pop(user_id, None)
        if finishing is not None:
            finishing.done.set()

    def _unsent(self, work: UserWork) -> UserWork:
        """``work`` without replies this process delivered and has not removed from the outbox yet."""
        if self.delivered is None or not any(item.id in self.delivered for item in work.outbox):
            return work
        return replace(work, outbox=[item for item in work.outbox if item.id not in self.delivered])

    async def close(self, timeout: float) -> None:
        """On shutdown, after the workers: remove the delivered replies still pending."""
        if self.delivered is not None:
            left = await self.delivered.close(timeout)
            if left:
                log.warning("delivered_replies_not_forgotten", count=left)

    async def _claim(self, user_id: int) -> UserWork | None:
        work = await persist(
            self.engine,
            lambda conn: turns.claim_work(
                conn,
                user_id=user_id,
                lease=self.instance.lease_terms(),
                default_history=self.settings.history_default_messages,
            ),
            what="claim_work",
            lifecycle=self.lifecycle,
        )
        return self._unsent(work) if work is not None else None
