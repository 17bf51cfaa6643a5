"""The bot's turn statements on real PostgreSQL: leases, the inbox and outbox, update ids in time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_core.repositories import bot_instances, messages, turns
from parley_core.repositories.turns import LeaseTerms, ReplyDraft, StoredAnswer
from parley_core.repositories.users import TelegramProfile

USER = 42
DAY = 86400.0


def terms(holder: uuid.UUID, *, take_over: bool = True) -> LeaseTerms:
    return LeaseTerms(holder=holder, stale_seconds=20, take_over=take_over)


async def accept(
    conn: AsyncConnection, holder: uuid.UUID, update_id: int, content: str, **overrides: object
) -> turns.Accepted:
    values: dict[str, object] = {
        "profile": TelegramProfile(id=USER, first_name="Ada"),
        "update_id": update_id,
        "chat_id": USER,
        "telegram_message_id": update_id,
        "sent_at": datetime.now(UTC),
        "content": content,
        "lease": terms(holder),
        "default_history": 20,
        "max_queued": 10,
        "dedupe_seconds": DAY,
    }
    values.update(overrides)
    return await turns.accept_message(conn, **values)  # type: ignore[arg-type]


async def beat(conn: AsyncConnection, holder: uuid.UUID) -> list[int]:
    return await bot_instances.heartbeat_and_find_work(
        conn, lease=terms(holder), mode="webhook", hostname="test", limit=10
    )


async def answer(
    conn: AsyncConnection, holder: uuid.UUID, message_ids: list[uuid.UUID], text_: str
) -> list[uuid.UUID] | None:
    return await turns.finish_turn(
        conn,
        user_id=USER,
        holder=holder,
        message_ids=message_ids,
        answer=StoredAnswer(text_, "model", 1, 1, 1, False),
        replies=[ReplyDraft(USER, None, text_, markdown=True, parts_total=1, is_answer=True)],
    )


async def scalar(conn: AsyncConnection, sql: str) -> object:
    return (await conn.execute(text(sql))).scalar()


async def test_a_live_process_keeps_its_lease_and_a_second_one_only_queues(engine: AsyncEngine) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, mine)
        await beat(conn, theirs)
        first = await accept(conn, mine, 1, "a")
        second = await accept(conn, theirs, 2, "b")
        assert first.message is not None
        assert second.message is not None
        stored = await answer(conn, mine, [first.message.message_id], "answer a")
        stolen = await answer(conn, theirs, [second.message.message_id], "answer b")
        work = await turns.claim_work(conn, user_id=USER, lease=terms(mine), default_history=20)

    assert (first.status, first.leased, first.work is not None) == ("stored", True, True)
    assert (second.status, second.leased, second.work) == ("stored", False, None)
    assert stored is not None
    assert len(stored) == 1
    assert stolen is None  # not the lease holder: nothing consumed, nothing stored
    assert work is not None
    assert [m.content for m in work.pending] == ["b"]
    assert [o.text for o in work.outbox] == ["answer a"]
    assert [(m.role.value, m.content) for m in work.history] == [("user", "a"), ("assistant", "answer a")]


async def test_a_dead_process_lease_is_taken_over_only_by_a_process_that_trusts_its_view(
    engine: AsyncEngine,
) -> None:
    dead, alive = uuid.uuid4(), uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, dead)
        await accept(conn, dead, 1, "asked before the crash")
        await conn.execute(text("UPDATE bot_instances SET heartbeat_at = now() - interval '1 minute'"))
        await beat(conn, alive)
        cautious = await turns.claim_work(
            conn, user_id=USER, lease=terms(alive, take_over=False), default_history=20
        )
        found = await beat(conn, alive)
        taken = await turns.claim_work(conn, user_id=USER, lease=terms(alive), default_history=20)

    assert cautious is None  # just back from an outage, it cannot tell a dead process from itself
    assert found == [USER]
    assert taken is not None
    assert [m.content for m in taken.pending] == ["asked before the crash"]


async def test_update_ids_are_duplicates_for_a_day_then_new_messages(engine: AsyncEngine) -> None:
    me = uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, me)
        first = await accept(conn, me, 7, "hello")
        again = await accept(conn, me, 7, "hello")
        await conn.execute(text("UPDATE telegram_updates SET seen_at = now() - interval '2 days'"))
        reused = await accept(conn, me, 7, "a week later, the same id")
        pruned = await bot_instances.prune(conn, dedupe_seconds=DAY)
        count = await scalar(conn, "SELECT count(*) FROM messages WHERE telegram_update_id = 7")

    assert (first.status, again.status, reused.status) == ("stored", "duplicate", "stored")
    assert count == 2
    assert pruned == (0, 0)  # the re-used id was refreshed, so nothing is old enough to forget


async def test_a_full_queue_refuses_without_storing(engine: AsyncEngine) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, me)
        await beat(conn, other)
        statuses = [(await accept(conn, other, i, f"m{i}", max_queued=2)).status for i in range(1, 4)]
        count = await scalar(conn, "SELECT count(*) FROM messages")

    assert statuses == ["stored", "stored", "refused"]
    assert count == 2


async def test_parts_are_counted_and_the_last_one_releases_the_lease_unless_work_waits(
    engine: AsyncEngine,
) -> None:
    me = uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, me)
        first = await accept(conn, me, 1, "long question")
        assert first.message is not None
        [outbox_id] = await answer(conn, me, [first.message.message_id], "long answer") or []
        counted = await turns.record_part(
            conn, user_id=USER, holder=me, outbox_id=outbox_id, parts_delivered=1
        )
        delivered_parts = await scalar(conn, "SELECT parts_delivered FROM bot_outbox")
        await accept(conn, me, 2, "meanwhile")
        busy = await turns.record_delivery(conn, user_id=USER, holder=me, outbox_id=outbox_id, release=True)
        holder_busy = await scalar(conn, "SELECT lease_holder FROM users")
        work = await turns.claim_work(conn, user_id=USER, lease=terms(me), default_history=20)
        assert work is not None
        [second_id] = await answer(conn, me, [work.pending[0].message_id], "short answer") or []
        idle = await turns.record_delivery(conn, user_id=USER, holder=me, outbox_id=second_id, release=True)
        holder_idle = await scalar(conn, "SELECT lease_holder FROM users")
        left = (
            await scalar(conn, "SELECT count(*) FROM bot_inbox"),
            await scalar(conn, "SELECT count(*) FROM bot_outbox"),
        )

    assert counted
    assert delivered_parts == 1
    assert (busy.more, busy.released, holder_busy) == (True, False, me)
    assert (idle.more, idle.released, holder_idle) == (False, True, None)
    assert left == (0, 0)


async def test_reset_forgets_queued_messages_and_unsent_replies(engine: AsyncEngine) -> None:
    me = uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, me)
        first = await accept(conn, me, 1, "answered, not yet sent")
        assert first.message is not None
        await answer(conn, me, [first.message.message_id], "the answer")
        await accept(conn, me, 2, "still waiting")
    async with engine.begin() as conn:
        hidden = await messages.soft_delete_history(conn, user_id=USER)
    async with engine.connect() as conn:
        queued = (
            await scalar(conn, "SELECT count(*) FROM bot_inbox"),
            await scalar(conn, "SELECT count(*) FROM bot_outbox"),
        )

    assert hidden == 3
    assert queued == (0, 0)


async def test_a_graceful_stop_gives_back_every_lease(engine: AsyncEngine) -> None:
    me = uuid.uuid4()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await beat(conn, me)
        await accept(conn, me, 1, "in flight at shutdown")
        await bot_instances.stop(conn, holder=me)
        holder = await scalar(conn, "SELECT lease_holder FROM users")
        instances = await scalar(conn, "SELECT count(*) FROM bot_instances")
        queued = await scalar(conn, "SELECT count(*) FROM bot_inbox")

    assert (holder, instances, queued) == (None, 0, 1)  # the message stays queued for a successor
