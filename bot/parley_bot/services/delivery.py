"""Sending a stored reply: only the parts Telegram has not accepted yet, each counted once accepted.

A reply is in ``bot_outbox`` before its first part is sent. After each part Telegram accepts, the
count of delivered parts is stored; the last part removes the reply (and, if nothing else waits,
gives the user's lease back in the same statement). A turn resumed after a crash therefore sends
only what is missing; the one window left is between Telegram accepting a part and the count
being stored — a few milliseconds.

Streaming previews (edit mode) become the reply's first parts by editing them. What Telegram
refuses for good (the user blocked the bot, the chat is gone) is logged as a warning and dropped;
what it cannot take now (flood control beyond the limit, Telegram unavailable) is postponed and
tried again later by any process, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.lifecycle import Lifecycle
from parley_bot.services.database import Statement, T, persist
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.splitting import split_markdown
from parley_core.logging import get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import Delivered, OutboxItem

log = get_logger(__name__)

REMEMBER_FORGOTTEN_SECONDS = 60.0  # longer than any statement that may have read a removed reply
FORGET_RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 8  # postponed deliveries before a reply is given up
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "not enough rights", "have no rights")


def _undeliverable(exc: Exception) -> bool:
    """Telegram will never take this reply: blocked, kicked, chat gone."""
    if isinstance(exc, TelegramForbiddenError | TelegramNotFound):
        return True
    return isinstance(exc, TelegramBadRequest) and any(hint in exc.message.lower() for hint in _GONE)


def _not_now(exc: Exception) -> bool:
    """Telegram cannot take it now, but may later."""
    return isinstance(exc, TelegramRetryAfter | TelegramNetworkError | TelegramServerError)


def reply_parts(text: str) -> list[str]:
    """The messages a reply is sent as (the same split every time, so counts stay valid)."""
    return split_markdown(text) or [text]


class DeliveredReplies:
    """Replies Telegram has fully accepted, removed from the outbox in batches (polling mode).

    With one process there is no lease to give back after a turn, so the turn's last statement —
    removing the delivered reply — leaves the answer's path: the worker ends as soon as Telegram
    accepted the reply, and the removals of all replies delivered meanwhile share one statement.
    Until it is removed — and for a minute after, because a statement that read the outbox before the
    removal may return after it — a reply is known here, and no turn of this process sends it again.
    The window in which a crash makes a successor send it again grows by the few milliseconds a
    batch waits.
    """

    def __init__(self, *, engine: AsyncEngine, lifecycle: Lifecycle) -> None:
        self.engine = engine
        self.lifecycle = lifecycle
        self._pending: set[uuid.UUID] = set()
        self._forgotten: set[uuid.UUID] = set()  # removed within the last minute
        self._forgotten_order: collections.deque[tuple[float, uuid.UUID]] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, outbox_id: object) -> bool:
        return outbox_id in self._pending or outbox_id in self._forgotten

    def add(self, outbox_id: uuid.UUID) -> None:
        """The reply was delivered: forget it soon."""
        self._pending.add(outbox_id)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivered-replies")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = list(self._pending)
            try:
                await self._forget(batch)
            except Exception as exc:  # not an outage (persist waits those out): a bug or a conflict
                log.error("forget_replies_failed", error=type(exc).__name__, count=len(batch), exc_info=exc)
                await asyncio.sleep(FORGET_RETRY_SECONDS)  # the batch stays pending and is tried again
                self._wake.set()
                continue
            now = time.monotonic()
            self._forgotten.update(batch)
            self._forgotten_order.extend((now, outbox_id) for outbox_id in batch)
            self._pending.difference_update(batch)
            horizon = now - REMEMBER_FORGOTTEN_SECONDS
            while self._forgotten_order and self._forgotten_order[0][0] <= horizon:  # oldest first
                self._forgotten.discard(self._forgotten_order.popleft()[1])
            if not self._pending:
                self._idle.set()

    async def _forget(self, batch: list[uuid.UUID]) -> None:
        await persist(
            self.engine,
            lambda conn: turns.forget_replies(conn, outbox_ids=batch),
            what="forget_replies",
            lifecycle=self.lifecycle,
        )

    async def close(self, timeout: float) -> int:
        """Forget what is pending (on shutdown), waiting up to ``timeout``; returns how many are left."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return len(self._pending)


class Delivery:
    """Delivers outbox items of the users whose lease this process holds."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        output: TelegramOutput,
        lifecycle: Lifecycle,
        holder: uuid.UUID,
        delivered: DeliveredReplies | None = None,
    ) -> None:
        self.engine = engine
        self.output = output
        self.lifecycle = lifecycle
        self.holder = holder
        self.delivered = delivered  # polling mode: delivered replies are forgotten in batches

    async def deliver(self, user_id: int, item: OutboxItem, *, release: bool) -> Delivered | None:
        """Send what is missing of ``item``; None when it was postponed or the lease was lost."""
        parts = reply_parts(item.text)
        previews = list(item.preview_message_ids)
        for index in range(item.parts_delivered, len(parts)):
            try:
                await self._send(item, index, parts[index], previews)
            except Exception as exc:
                if _undeliverable(exc):
                    metrics.BOT_REPLIES_UNDELIVERABLE.inc()
                    log.warning("reply_undeliverable", chat_id=item.chat_id, error=exc.__class__.__name__)
                    return await self._done(user_id, item, release=release)
                if _not_now(exc):
                    await self._postpone(user_id, item, exc)
                    return None
                raise
            if index < len(parts) - 1 and not await self._record_part(user_id, item, index + 1):
                log.warning("reply_lease_lost", outbox_id=str(item.id))
                return None
        for message_id in previews[len(parts) :]:
            await self.output.delete(item.chat_id, message_id)
        return await self._done(user_id, item, release=release)

    def _persist(self, what: str, statement: Statement[T]) -> Coroutine[Any, Any, T]:
        # Hands back persist's own coroutine: no extra frame on the delivery path.
        return persist(self.engine, statement, what=what, lifecycle=self.lifecycle)

    async def _record_part(self, user_id: int, item: OutboxItem, parts_delivered: int) -> bool:
        return await self._persist(
            "record_part",
            lambda conn: turns.record_part(
                conn, user_id=user_id, holder=self.holder, outbox_id=item.id, parts_delivered=parts_delivered
            ),
        )

    async def _send(self, item: OutboxItem, index: int, part: str, previews: list[int]) -> None:
        reply_to = item.reply_to_message_id if index == 0 else None
        if index < len(previews):
            try:
                await self.output.edit_part(item.chat_id, previews[index], part)
                return
            except TelegramBadRequest as exc:  # the user deleted the preview: send the part instead
                log.info("preview_gone", chat_id=item.chat_id, error=exc.message)
        if item.markdown:
            await self.output.send_part(item.chat_id, part, reply_to=reply_to)
        else:
            await self.output.send_plain(item.chat_id, part, reply_to=reply_to)

    async def _done(self, user_id: int, item: OutboxItem, *, release: bool) -> Delivered:
        if self.delivered is not None and not release:
            # One process: new messages of this user reach its worker directly, so nothing else
            # needs to be known about "more work" here.
            self.delivered.add(item.id)
            return Delivered(more=False, released=False)
        return await self._persist(
            "record_delivery",
            lambda conn: turns.record_delivery(
                conn, user_id=user_id, holder=self.holder, outbox_id=item.id, release=release
            ),
        )

    async def _postpone(self, user_id: int, item: OutboxItem, exc: Exception) -> None:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            metrics.BOT_REPLIES_UNDELIVERABLE.inc()
            log.error(
                "reply_given_up", chat_id=item.chat_id, attempts=item.attempts + 1, error=type(exc).__name__
            )
            await self._done(user_id, item, release=True)
            return
        retry_in = min(RETRY_BASE_SECONDS * 2**item.attempts, RETRY_MAX_SECONDS)
        if isinstance(exc, TelegramRetryAfter):
            retry_in = max(retry_in, float(exc.retry_after))
        log.warning("reply_postponed", chat_id=item.chat_id, retry_in=retry_in, error=type(exc).__name__)
        await self._persist(
            "postpone_delivery",
            lambda conn: turns.postpone_delivery(
                conn, user_id=user_id, holder=self.holder, outbox_id=item.id, retry_in_seconds=retry_in
            ),
        )
