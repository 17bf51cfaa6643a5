"""One turn of a user's worker, on the work its claim read: send, dismiss, gather, or answer.

In order: replies stored by an earlier turn and not yet delivered are sent first; waiting messages
older than BOT_STALE_MESSAGE_SECONDS get "I could not answer this in time"; a burst (or a paste
Telegram split) is gathered for BOT_COALESCE_SECONDS into one question; then the model answers one
chat's messages (``answering``). The answer is stored with its outbox row in one statement —
waiting for the database if it is down — and only then sent, part by part (``delivery``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.i18n import N_, _, locale_for, use_locale
from parley_bot.lifecycle import Lifecycle
from parley_bot.llm.types import Spent
from parley_bot.services.answering import Answerer
from parley_bot.services.budgets import BudgetGuard
from parley_bot.services.database import execute, persist
from parley_bot.services.delivery import Delivery
from parley_bot.services.prompt import looks_split
from parley_core.logging import bind_context, get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import OutboxItem, PendingMessage, ReplyDraft, StoredAnswer, UserWork
from parley_core.settings import BotSettings

log = get_logger(__name__)

STALE = N_("Sorry, I could not answer this in time. Please ask again.")

GATHER_LIMIT_FACTOR = 4  # a burst is gathered for at most this many coalescing windows

# Called when a turn starts the last delivery of the answer it stored, with the ids of the replies it
# delivers; returns whether that delivery gives the user's lease back at its end.
LastDelivery = Callable[[int, set[uuid.UUID]], bool]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True, eq=False)
class TurnSteps:
    """The steps of one turn, for the worker of a user whose lease this process holds."""

    engine: AsyncEngine
    settings: BotSettings
    lifecycle: Lifecycle
    holder: uuid.UUID
    delivery: Delivery
    answerer: Answerer
    budgets: BudgetGuard
    on_last_delivery: LastDelivery

    async def run(self, work: UserWork) -> bool:
        """One turn on ``work``; True when more work may wait (the lease is still held), False when done.

        Every text the turn writes (notes, refusals, apologies) is in the user's language.
        """
        with use_locale(locale_for(work.language)):
            return await self._run(work)

    async def _run(self, work: UserWork) -> bool:
        if work.outbox:
            more = await self._deliver_stored(work)
            if more is not None:
                return more
        if not work.pending:
            await self.release(work.user_id)
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
            await self.release(work.user_id)  # a postponed reply goes first; recovery comes back
            return False
        for index, item in enumerate(work.outbox):
            last = index == len(work.outbox) - 1 and not work.pending
            release = last and self.on_last_delivery(work.user_id, {o.id for o in work.outbox})
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
            ReplyDraft(m.chat_id, m.telegram_message_id, _(STALE), markdown=False, parts_total=1)
            for m in messages
        ]
        return await self._store_and_deliver(user_id, messages, answer=None, replies=replies, last=last)

    async def _answer(self, work: UserWork, pending: list[PendingMessage]) -> bool:
        """Ask the model about one chat's messages, then store and send the reply; True if more waits."""
        chat_id = pending[0].chat_id
        bind_context(chat_id=chat_id)
        if len(pending) > 1:
            metrics.BOT_MESSAGES_COALESCED.inc(len(pending) - 1)
        reply_to = None if chat_id > 0 else pending[-1].telegram_message_id
        refusal = self.budgets.refusal(work, _now())
        if refusal is not None:
            log.info("turn_over_budget")
            notice = ReplyDraft(chat_id, reply_to, refusal, markdown=False, parts_total=1)
            return bool(
                await self._store_and_deliver(work.user_id, pending, answer=None, replies=[notice], last=True)
            )
        answered = await self.answerer.answer(work, pending)
        replies = [answered.reply]
        if answered.note is not None:
            replies.append(ReplyDraft(chat_id, reply_to, answered.note, markdown=False, parts_total=1))
        warning = self.budgets.warning(work, answered.answer, _now())
        if warning is not None:
            replies.append(ReplyDraft(chat_id, reply_to, warning, markdown=False, parts_total=1))
        more = await self._store_and_deliver(
            work.user_id, pending, answer=answered.answer, replies=replies, last=True, wasted=answered.wasted
        )
        waited = (_now() - pending[-1].received_at).total_seconds()
        metrics.BOT_REPLY_DURATION.labels(outcome=answered.outcome).observe(max(waited, 0.0))
        return bool(more)

    async def _store_and_deliver(
        self,
        user_id: int,
        messages: list[PendingMessage],
        *,
        answer: StoredAnswer | None,
        replies: list[ReplyDraft],
        last: bool,
        wasted: Spent | None = None,
    ) -> bool | None:
        """Consume ``messages``, store ``answer`` and ``replies``, then deliver the replies.

        ``wasted``: what attempts that broke off consumed besides the answer, for the budget ledger.

        Returns whether more work waits; None when the lease was lost (nothing stored or sent).
        """
        outbox_ids = await persist(
            self.engine,
            lambda conn: turns.finish_turn(
                conn,
                user_id=user_id,
                holder=self.holder,
                message_ids=[m.message_id for m in messages],
                answer=answer,
                replies=replies,
                extra_tokens=wasted.tokens if wasted else 0,
                extra_usd=wasted.cost_usd if wasted else None,
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
                release = self.on_last_delivery(user_id, set(outbox_ids))
            delivered = await self.delivery.deliver(user_id, item, release=release)
            if delivered is None:
                return None
            more = delivered.more
        return more

    async def release(self, user_id: int) -> None:
        """Give the user's lease back (this process no longer answers them until it takes it again)."""
        await execute(
            self.engine, lambda conn: turns.release_lease(conn, user_id=user_id, holder=self.holder)
        )
