"""Delivering stored replies: parts counted as Telegram accepts them, previews reused, give-ups bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_bot import metrics
from parley_bot.__main__ import create_bot
from parley_bot.lifecycle import Lifecycle
from parley_bot.services import delivery as delivery_module
from parley_bot.services.delivery import DeliveredReplies, Delivery, reply_parts
from parley_bot.telegram import TelegramOutput
from parley_core.repositories import bot_instances, turns
from parley_core.repositories.turns import LeaseTerms, OutboxItem, ReplyDraft, StoredAnswer
from parley_core.repositories.users import TelegramProfile
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows


@pytest.fixture
async def delivery(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> AsyncIterator[Delivery]:
    """A Delivery of a process that holds USER's lease, with one stored answer waiting in the outbox."""
    settings = make_settings()
    lifecycle = Lifecycle()
    bot = create_bot(settings, lifecycle)
    holder = uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        lease = LeaseTerms(holder, 20, True)
        await bot_instances.heartbeat_and_find_work(conn, lease=lease, mode="polling", hostname="t", limit=1)
        accepted = await turns.accept_message(
            conn,
            profile=TelegramProfile(USER, first_name="Ada"),
            update_id=1,
            chat_id=USER,
            telegram_message_id=1,
            sent_at=datetime.now(UTC),
            content="question",
            lease=lease,
            default_history=20,
            max_queued=10,
            dedupe_seconds=86400,
        )
        assert accepted.message is not None
        text_ = ("paragraph " * 300 + "\n\n") * 3  # three parts
        await turns.finish_turn(
            conn,
            user_id=USER,
            holder=holder,
            message_ids=[accepted.message.message_id],
            answer=StoredAnswer(text_, "m", 1, 1, 1, False),
            replies=[
                ReplyDraft(
                    USER, None, text_, markdown=True, parts_total=len(reply_parts(text_)), is_answer=True
                )
            ],
        )
    try:
        yield Delivery(
            engine=engine,
            output=TelegramOutput.from_settings(bot, settings),
            lifecycle=lifecycle,
            holder=holder,
        )
    finally:
        await bot.session.close()


async def stored_item(engine: AsyncEngine, holder: uuid.UUID) -> OutboxItem:
    """Claim USER's work for ``holder`` (as a resumed turn does) and return the stored reply."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        work = await turns.claim_work(
            conn, user_id=USER, lease=LeaseTerms(holder, 20, True), default_history=20
        )
    assert work is not None
    [item] = work.outbox
    return item


async def test_a_resumed_delivery_sends_only_the_parts_telegram_did_not_take(
    delivery: Delivery, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    item = await stored_item(engine, delivery.holder)
    async with engine.connect() as conn:  # part 1 was accepted before the process died
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await turns.record_part(
            conn, user_id=USER, holder=delivery.holder, outbox_id=item.id, parts_delivered=1
        )
    resumed = await stored_item(engine, delivery.holder)
    done = await delivery.deliver(USER, resumed, release=True)

    parts = reply_parts(item.text)
    assert item.parts_total == len(parts) == 3
    assert resumed.parts_delivered == 1
    assert [m.text for m in telegram.messages_to(USER)] == [part.strip() for part in parts[1:]]
    assert done is not None
    assert done.released
    assert await rows(engine, "SELECT 1 FROM bot_outbox") == []


async def test_telegram_unavailable_postpones_the_reply_and_frees_the_user(
    delivery: Delivery, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    item = await stored_item(engine, delivery.holder)
    telegram.fail("sendMessage", 502, "Bad Gateway", times=3)  # the send and its two retries

    assert await delivery.deliver(USER, item, release=True) is None

    [row] = await rows(
        engine, "SELECT attempts, parts_delivered, next_attempt_at > now() AS later FROM bot_outbox"
    )
    assert (row.attempts, row.parts_delivered, row.later) == (1, 0, True)
    assert (await rows(engine, "SELECT lease_holder FROM users"))[0].lease_holder is None
    assert telegram.messages_to(USER) == []


async def test_a_reply_telegram_keeps_failing_is_given_up_after_the_last_attempt(
    delivery: Delivery, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    item = await stored_item(engine, delivery.holder)
    last_try = OutboxItem(**{**item.__dict__, "attempts": delivery_module.MAX_ATTEMPTS - 1})
    telegram.fail("sendMessage", 502, "Bad Gateway", times=3)
    before = metrics.BOT_REPLIES_UNDELIVERABLE._value.get()

    assert await delivery.deliver(USER, last_try, release=True) is None

    assert metrics.BOT_REPLIES_UNDELIVERABLE._value.get() == before + 1
    assert await rows(engine, "SELECT 1 FROM bot_outbox") == []
    assert (await rows(engine, "SELECT lease_holder FROM users"))[0].lease_holder is None


async def test_a_delivered_reply_stays_known_after_its_removal(
    delivery: Delivery, engine: AsyncEngine
) -> None:
    # A statement that read the outbox before the removal may return after it: the reply must still
    # be recognised as delivered then, or a turn would send it again.
    item = await stored_item(engine, delivery.holder)
    delivered = DeliveredReplies(engine=engine, lifecycle=Lifecycle())
    delivered.add(item.id)
    left = await delivered.close(timeout=10)

    assert left == 0
    assert await rows(engine, "SELECT 1 FROM bot_outbox") == []
    assert item.id in delivered


async def test_a_failed_removal_is_retried_and_does_not_stop_the_removals(
    delivery: Delivery, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not an outage (a bug, a conflict) is logged and the batch tried again; the
    removal happens and shutdown still closes cleanly."""
    monkeypatch.setattr(delivery_module, "FORGET_RETRY_SECONDS", 0.05)
    item = await stored_item(engine, delivery.holder)
    delivered = DeliveredReplies(engine=engine, lifecycle=Lifecycle())
    real = turns.forget_replies
    calls = 0

    async def flaky(conn: AsyncConnection, *, outbox_ids: list[uuid.UUID]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("simulated deadlock")
        await real(conn, outbox_ids=outbox_ids)

    monkeypatch.setattr(turns, "forget_replies", flaky)
    delivered.add(item.id)
    left = await delivered.close(timeout=10)

    assert calls == 2
    assert left == 0
    assert await rows(engine, "SELECT 1 FROM bot_outbox") == []
    assert item.id in delivered
