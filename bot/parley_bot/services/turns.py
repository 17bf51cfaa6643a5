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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.lifecycle import Lifecycle
from parley_bot.llm import ContextTooLongError, LLMClient, LLMUnavailableError
from parley_bot.llm.types import Completion
from parley_bot.services.database import execute, persist
from parley_bot.services.delivery import DeliveredReplies, Delivery, reply_parts
from parley_bot.services.instance import Instance
from parley_bot.services.prompt import build_prompt, looks_split
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.telegram import ReplyStream, TelegramOutput
from parley_core.logging import bind_context, clear_context, get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import (
    AcceptStatus,
    OutboxItem,
    PendingMessage,
    ReplyDraft,
    StoredAnswer,
    UserWork,
)
from parley_core.repositories.users import TelegramProfile
from parley_core.settings import BotSettings

log = get_logger(__name__)

UNAVAILABLE = (
    "Sorry, the language models are temporarily unavailable. I saved your message — "
    "please try again in a minute."
)
TOO_LONG = "Sorry, that message is too long for the model. Please shorten it or split it up."
STALE = "Sorry, I could not answer this in time. Please ask again."
FAILED = "Sorry, something went wrong on my side with this message. Please try again in a minute."
SLOW_DOWN = "You are writing faster than I may answer; I'll reply in about {seconds} s."

GATHER_LIMIT_FACTOR = 4  # a burst is gathered for at most this many coalescing windows
SLOW_DOWN_NOTICE_SECONDS = 5.0  # a rate-limit wait at least this long is announced
QUARANTINE_SECONDS = 60.0  # a user whose turn failed unexpectedly is not resumed for this long
FINISHING_WAIT_SECONDS = 2.0  # longest a new message waits for the user's worker to end


def _now() -> datetime:
    return datetime.now(UTC)


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
        self.llm = llm
        self.output = output
        self.settings = settings
        self.instance = instance
        self.lifecycle = lifecycle
        # Polling mode runs one process: a lease stays with it after a turn (no write to give it back,
        # and the user's next message needs none to take it), and delivered replies are forgotten in
        # batches. Several webhook replicas give the lease back, so whichever replica receives the
        # next message can answer it.
        self.sticky_leases = settings.bot_mode == "polling"
        self.delivered = DeliveredReplies(engine=engine, lifecycle=lifecycle) if self.sticky_leases else None
        self.delivery = Delivery(
            engine=engine, output=output, lifecycle=lifecycle, holder=instance.id, delivered=self.delivered
        )
        self.limiter = RateLimiter(burst=settings.rate_limit_burst, per_minute=settings.rate_limit_per_minute)
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
    ) -> AcceptStatus:
        """Store and queue a user's message (one statement), then start or wake the user's worker.

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
                UserWork(
                    user_id=work.user_id,
                    pending=[*work.pending, accepted.message],
                    outbox=[item for item in work.outbox if item.id not in delivered],
                    history=work.history,
                    system_prompt=work.system_prompt,
                    max_history_messages=work.max_history_messages,
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
                more = await self._turn(work)
                work = None
                if not more and user_id not in self._woken:
                    self._workers.pop(user_id, None)
                    return
                self._finished(user_id)
        except asyncio.CancelledError:
            # Shutdown: the messages stay queued and the lease is given back, so a successor (or
            # another replica) answers them.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(user_id))
            raise
        except Exception as exc:
            log.error("turn_failed", error=type(exc).__name__, exc_info=exc)
            self._quarantined[user_id] = time.monotonic() + QUARANTINE_SECONDS
            with contextlib.suppress(Exception):
                await self._release(user_id)
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
        return UserWork(
            user_id=work.user_id,
            pending=work.pending,
            outbox=[item for item in work.outbox if item.id not in self.delivered],
            history=work.history,
            system_prompt=work.system_prompt,
            max_history_messages=work.max_history_messages,
        )

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

    async def _release(self, user_id: int) -> None:
        await execute(
            self.engine, lambda conn: turns.release_lease(conn, user_id=user_id, holder=self.instance.id)
        )

    async def _turn(self, work: UserWork) -> bool:
        """One turn; True when more work may wait (the lease is still held), False when done."""
        if work.outbox:
            more = await self._deliver_stored(work)
            if more is not None:
                return more
        if not work.pending:
            await self._release(work.user_id)
            return False
        pending = work.pending
        limit = self.settings.bot_stale_message_seconds
        stale = [m for m in pending if (_now() - m.sent_at).total_seconds() > limit]
        if stale:
            fresh = [m for m in pending if m not in stale]
            more = await self._dismiss(work.user_id, stale, last=not fresh)
            if more is None or not fresh:
                return bool(more)
            pending = fresh
        chat_id = pending[0].chat_id
        this_chat = [m for m in pending if m.chat_id == chat_id]  # one chat per turn (groups)
        if self._should_gather(this_chat):
            await asyncio.sleep(self._gather_wait(this_chat))
            return True  # claim again: the turn takes whatever arrived meanwhile
        more = await self._answer(work, this_chat)
        return more or len(this_chat) < len(pending)  # another chat's messages wait for the next turn

    async def _deliver_stored(self, work: UserWork) -> bool | None:
        """Replies stored by an earlier turn go first; a bool ends the turn, None goes on with it."""
        if any(not item.due for item in work.outbox):
            await self._release(work.user_id)  # a postponed reply goes first; recovery comes back
            return False
        for index, item in enumerate(work.outbox):
            last = index == len(work.outbox) - 1 and not work.pending
            release = last and self._finishing_now(work.user_id, {o.id for o in work.outbox})
            delivered = await self.delivery.deliver(work.user_id, item, release=release)
            if delivered is None:
                return False
            if last:
                return delivered.more
        return None

    def _should_gather(self, pending: list[PendingMessage]) -> bool:
        """Wait for more of a burst, or for the next part of a split paste?"""
        window = self.settings.bot_coalesce_seconds
        if window <= 0 or self._gather_wait(pending) <= 0:
            return False
        if (_now() - pending[0].received_at).total_seconds() > window * GATHER_LIMIT_FACTOR:
            return False
        return len(pending) > 1 or looks_split(pending[-1].content)

    def _gather_wait(self, pending: list[PendingMessage]) -> float:
        """Seconds until the newest message is a coalescing window old."""
        return self.settings.bot_coalesce_seconds - (_now() - pending[-1].received_at).total_seconds()

    async def _dismiss(self, user_id: int, messages: list[PendingMessage], *, last: bool) -> bool | None:
        """Tell the user these messages waited too long; None when the lease was lost."""
        metrics.BOT_MESSAGES_STALE.inc(len(messages))
        log.warning("turn_messages_stale", count=len(messages))
        replies = [
            ReplyDraft(m.chat_id, m.telegram_message_id, STALE, markdown=False, parts_total=1)
            for m in messages
        ]
        return await self._store_and_deliver(user_id, messages, answer=None, replies=replies, last=last)

    async def _answer(self, work: UserWork, pending: list[PendingMessage]) -> bool:
        chat_id = pending[0].chat_id
        bind_context(chat_id=chat_id)
        private = chat_id > 0
        reply_to = None if private else pending[-1].telegram_message_id
        if len(pending) > 1:
            metrics.BOT_MESSAGES_COALESCED.inc(len(pending) - 1)
        await self._wait_for_rate_limit(work.user_id, chat_id)
        stream = self._stream(chat_id, pending) if private else None
        prompt = build_prompt(
            system_prompt=work.system_prompt or self.settings.llm_system_prompt,
            history=work.history,
            question=[m.content for m in pending],
            max_history=work.max_history_messages,
        )
        completion: Completion | None = None
        outcome = "answered"
        try:
            async with self.output.typing(chat_id):
                completion = await self.llm.complete(prompt, on_partial=stream.update if stream else None)
        except LLMUnavailableError as exc:
            outcome, text = "unavailable", UNAVAILABLE
            log.warning("turn_not_answered", outcome=outcome, reason=exc.reason)
        except ContextTooLongError as exc:
            outcome, text = "too_long", TOO_LONG
            log.warning("turn_not_answered", outcome=outcome, reason=str(exc))
        answer = None
        if completion is not None:
            text = completion.text.replace("\x00", "")
            answer = StoredAnswer(
                content=text,
                model=completion.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_ms=completion.latency_ms,
                fallback_used=completion.fallback_used,
            )
        reply = ReplyDraft(
            chat_id,
            reply_to,
            text,
            markdown=answer is not None,
            parts_total=len(reply_parts(text)),
            is_answer=answer is not None,
            preview_message_ids=stream.preview_message_ids if stream else (),
        )
        more = await self._store_and_deliver(work.user_id, pending, answer=answer, replies=[reply], last=True)
        waited = (_now() - pending[-1].received_at).total_seconds()
        metrics.BOT_REPLY_DURATION.labels(outcome=outcome).observe(max(waited, 0.0))
        return bool(more)

    async def _store_and_deliver(
        self,
        user_id: int,
        messages: list[PendingMessage],
        *,
        answer: StoredAnswer | None,
        replies: list[ReplyDraft],
        last: bool,
    ) -> bool | None:
        """Consume ``messages``, store ``answer`` and ``replies``, then deliver the replies.

        Returns whether more work waits; None when the lease was lost (nothing stored or sent).
        """
        outbox_ids = await persist(
            self.engine,
            lambda conn: turns.finish_turn(
                conn,
                user_id=user_id,
                holder=self.instance.id,
                message_ids=[m.message_id for m in messages],
                answer=answer,
                replies=replies,
            ),
            what="finish_turn",
            lifecycle=self.lifecycle,
        )
        if outbox_ids is None:
            log.warning("turn_superseded", messages=len(messages))
            return None
        more = False
        for index, (outbox_id, draft) in enumerate(zip(outbox_ids, replies, strict=True)):
            item = OutboxItem(
                id=outbox_id,
                chat_id=draft.chat_id,
                reply_to_message_id=draft.reply_to_message_id,
                text=draft.text,
                markdown=draft.markdown,
                parts_total=draft.parts_total,
                parts_delivered=0,
                preview_message_ids=draft.preview_message_ids,
                attempts=0,
            )
            release = last and index == len(replies) - 1
            if release:
                release = self._finishing_now(user_id, set(outbox_ids))
            delivered = await self.delivery.deliver(user_id, item, release=release)
            if delivered is None:
                return None
            more = delivered.more
        return more

    async def _wait_for_rate_limit(self, user_id: int, chat_id: int) -> None:
        wait = self.limiter.reserve(user_id)
        if wait <= 0:
            return
        metrics.BOT_RATE_LIMITED.inc()
        log.info("turn_rate_limited", wait_seconds=round(wait, 1))
        if wait >= SLOW_DOWN_NOTICE_SECONDS:
            with contextlib.suppress(Exception):  # a courtesy; the answer follows regardless
                await self.output.send_plain(chat_id, SLOW_DOWN.format(seconds=round(wait)))
        await asyncio.sleep(wait)

    def _stream(self, chat_id: int, pending: list[PendingMessage]) -> ReplyStream | None:
        mode = self.settings.stream_replies
        if mode == "off":
            return None
        newest = pending[-1]

        async def remember_preview(message_id: int) -> None:
            try:
                await execute(
                    self.engine,
                    lambda conn: turns.record_preview(
                        conn, message_id=newest.message_id, preview_message_id=message_id
                    ),
                )
            except Exception as exc:  # a preview left behind after a crash is the only cost
                log.warning("preview_not_recorded", error=type(exc).__name__)

        previews = tuple(p for m in pending for p in m.preview_message_ids)
        return ReplyStream(
            self.output,
            chat_id,
            mode="edit" if mode == "edit" else "draft",
            interval_seconds=self.settings.stream_edit_interval_seconds,
            previews=previews,
            on_new_preview=remember_preview,
        )
