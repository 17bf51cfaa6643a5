"""The bot as a process, broken on purpose: kill -9, a database that goes away, Telegram refusing.

Each test asserts what the user receives — every message answered, none twice — and what is
stored, with the production defaults except for pointing the bot at the doubles.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core.schema import upgrade
from parley_testing.bot_process import BotProcess, bot_process_environment
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.waiting import eventually
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import settled
from tests.support.postgres import DedicatedPostgres


async def stored(database_url: str, sql: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def wait_until_stored(database_url: str, sql: str, timeout: float = 30) -> None:
    """Until ``sql`` returns a row (what the bot process writes happens in its own time)."""
    await eventually(lambda: stored(database_url, sql), f"a row of {sql}", timeout=timeout, interval=0.05)


async def settled_at(database_url: str, *chat_ids: int) -> None:
    """Until nothing is pending for ``chat_ids`` in the bot process's database (see ``settled``)."""
    engine = create_async_engine(database_url)
    try:
        await settled(engine, *chat_ids)
    finally:
        await engine.dispose()


def user_contents(llm: LLMDouble) -> list[str]:
    """The question (last user message) of every LLM request, in order."""
    return [request["messages"][-1]["content"] for request in llm.requests]


def log_events(output: str) -> list[dict[str, Any]]:
    events = []
    for line in output.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


async def test_kill_9_while_the_model_answers_is_answered_exactly_once_after_the_restart(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(database_url, telegram, llm)
    llm.latency = 2.0
    async with BotProcess(env) as first:
        await first.start(telegram)
        telegram.send_text("what is durable?")
        await telegram.wait_for(lambda: len(llm.requests) == 1)
        await first.kill()
    llm.latency = 0.0
    async with BotProcess(env) as second:
        await second.start(telegram)
        await telegram.wait_for_messages(USER, 1, timeout=30)
        telegram.send_text("and now?")
        await telegram.wait_for_messages(USER, 2, timeout=30)
        assert await second.stop() == 0

    assert [m.text for m in telegram.messages_to(USER)] == ["echo: what is durable?", "echo: and now?"]
    assert user_contents(llm) == ["what is durable?", "what is durable?", "and now?"]
    # The re-delivered update was recognised and the history has no question twice in a row.
    assert [m["content"] for m in llm.requests[-1]["messages"][1:]] == [
        "what is durable?",
        "echo: what is durable?",
        "and now?",
    ]
    rows = await stored(database_url, "SELECT role, content FROM messages ORDER BY created_at")
    assert [(r.role, r.content) for r in rows] == [
        ("user", "what is durable?"),
        ("assistant", "echo: what is durable?"),
        ("user", "and now?"),
        ("assistant", "echo: and now?"),
    ]


async def test_kill_9_mid_stream_ends_in_one_complete_answer(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(database_url, telegram, llm, STREAM_REPLIES="auto")
    llm.answer = lambda _messages: "a streamed answer of quite a few words, one chunk at a time"
    llm.chunk_words, llm.chunk_delay = 1, 0.3
    async with BotProcess(env) as first:
        await first.start(telegram)
        telegram.send_text("stream it")
        await telegram.wait_for(lambda: len(telegram.drafts) >= 1, timeout=30)
        await first.kill()
    llm.chunk_delay = 0.0
    async with BotProcess(env) as second:
        await second.start(telegram)
        await telegram.wait_for_messages(USER, 1, timeout=30)
        telegram.send_text("sentinel")
        await telegram.wait_for_messages(USER, 2, timeout=30)

    assert [m.text for m in telegram.messages_to(USER)] == [
        "a streamed answer of quite a few words, one chunk at a time",
    ] * 2


async def test_kill_9_mid_stream_in_edit_mode_reuses_the_preview_message(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(database_url, telegram, llm, STREAM_REPLIES="edit")
    llm.answer = lambda _messages: "previewed while written, then finished by the successor"
    llm.chunk_words, llm.chunk_delay = 1, 0.4
    async with BotProcess(env) as first:
        await first.start(telegram)
        telegram.send_text("stream it")
        await telegram.wait_for(lambda: len(telegram.messages_to(USER)) == 1, timeout=30)
        await wait_until_stored(database_url, "SELECT 1 FROM bot_inbox WHERE preview_message_ids <> '{}'")
        await first.kill()
    [preview] = telegram.messages_to(USER)
    llm.chunk_delay = 0.0
    async with BotProcess(env) as second:
        await second.start(telegram)
        await telegram.wait_for(
            lambda: telegram.messages_to(USER)[0].text.endswith("by the successor"), timeout=30
        )
        telegram.send_text("sentinel")
        await telegram.wait_for(
            lambda: [m.text for m in telegram.messages_to(USER)] == [llm.answer([])] * 2, timeout=30
        )

    first_answer, sentinel = telegram.messages_to(USER)
    assert first_answer.message_id == preview.message_id  # edited into the answer, not left behind
    assert first_answer.text == "previewed while written, then finished by the successor"
    assert sentinel.message_id != first_answer.message_id  # the sentinel's own answer


async def test_a_stored_answer_telegram_could_not_take_is_sent_once_by_the_successor(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(database_url, telegram, llm)
    telegram.fail("sendMessage", 502, "Bad Gateway", times=3)  # the send and its two retries
    async with BotProcess(env) as first:
        await first.start(telegram)
        telegram.send_text("answer me later")
        await telegram.wait_for(lambda: telegram.failures_left("sendMessage") == 0, timeout=30)
        await wait_until_stored(database_url, "SELECT 1 FROM bot_outbox WHERE attempts > 0")  # postponed
        await first.kill()
    async with BotProcess(env) as second:
        await second.start(telegram)
        await telegram.wait_for_messages(USER, 1, timeout=30)
        telegram.send_text("sentinel")
        await telegram.wait_for_messages(USER, 2, timeout=30)

    assert [m.text for m in telegram.messages_to(USER)] == ["echo: answer me later", "echo: sentinel"]
    assert user_contents(llm) == ["answer me later", "sentinel"]  # the stored answer, not a new one


def answered(telegram: TelegramDouble, user: int) -> list[str]:
    """The questions the answers to ``user`` cover (the LLM double echoes them, joined by paragraphs)."""
    return [q for m in telegram.messages_to(user) for q in m.text.removeprefix("echo: ").split("\n\n")]


def expected(user: int) -> list[str]:
    return sorted([f"before {user}", f"during 0 {user}", f"during 1 {user}"])


async def test_postgres_stopped_for_30_s_while_three_users_write_loses_nothing(
    dedicated_postgres: DedicatedPostgres, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    users = [101, 102, 103]
    env = bot_process_environment(dedicated_postgres.url, telegram, llm)
    async with BotProcess(env) as bot, httpx.AsyncClient(timeout=5) as client:
        await bot.start(telegram)
        for user in users:
            telegram.send_text(f"before {user}", user_id=user)
        for user in users:
            await telegram.wait_for_messages(user, 1)
        dedicated_postgres.stop()
        for round_ in range(2):
            for user in users:
                telegram.send_text(f"during {round_} {user}", user_id=user)
            await asyncio.sleep(5)
        outage_ready = await client.get(f"http://127.0.0.1:{bot.port}/ready")
        outage_health = await client.get(f"http://127.0.0.1:{bot.port}/health")
        await asyncio.sleep(20)
        assert telegram.messages_to(101)[-1].text == "echo: before 101"  # nobody was told "went wrong"
        dedicated_postgres.start()
        recovered = time.monotonic()
        await telegram.wait_for(
            lambda: all(sorted(answered(telegram, user)) == expected(user) for user in users), timeout=30
        )
        answered_within = time.monotonic() - recovered
        await settled_at(dedicated_postgres.url, *users)  # a second answer to any would be here by now
        ready = await client.get(f"http://127.0.0.1:{bot.port}/ready")
        assert await bot.stop() == 0

    assert outage_ready.status_code == 503
    assert outage_health.status_code == 200  # a restart would not help: no liveness failure
    assert ready.status_code == 200
    assert answered_within < 30
    for user in users:
        # Each message answered exactly once; two that waited together may share one answer.
        assert sorted(answered(telegram, user)) == expected(user)
    asked = [question for content in user_contents(llm) for question in content.split("\n\n")]
    assert sorted(asked) == sorted([question for user in users for question in expected(user)])
    events = [e["event"] for e in log_events(bot.output)]
    assert "update_deferred" in events or "intake_paused" in events
    assert "update_failed" not in events


async def test_the_database_dying_during_an_llm_call_keeps_the_answer_and_blocks_nobody(
    dedicated_postgres: DedicatedPostgres, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(dedicated_postgres.url, telegram, llm)
    llm.latency = 2.0
    async with BotProcess(env) as bot:
        await bot.start(telegram)
        telegram.send_text("keep this answer")
        await telegram.wait_for(lambda: len(llm.requests) == 1)
        dedicated_postgres.stop()
        await asyncio.sleep(4)  # the model answers meanwhile; storing the answer has to wait
        assert telegram.messages_to(USER) == []  # never sent before it is stored
        dedicated_postgres.start()
        await telegram.wait_for_messages(USER, 1, timeout=30)
        llm.latency = 0.0
        telegram.send_text("next one")
        await telegram.wait_for_messages(USER, 2, timeout=10)  # no lease to wait out
        assert await bot.stop() == 0

    assert [m.text for m in telegram.messages_to(USER)] == ["echo: keep this answer", "echo: next one"]
    rows = await stored(dedicated_postgres.url, "SELECT role, content FROM messages ORDER BY created_at")
    assert [(r.role, r.content) for r in rows] == [
        ("user", "keep this answer"),
        ("assistant", "echo: keep this answer"),
        ("user", "next one"),
        ("assistant", "echo: next one"),
    ]


async def test_a_bot_started_before_the_migrations_waits_for_them_then_answers(
    empty_database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    """A fresh install starts the bot and the migrations Job together."""
    env = bot_process_environment(empty_database_url, telegram, llm)
    async with BotProcess(env) as bot, httpx.AsyncClient(timeout=5) as client:
        await bot.spawn()

        async def not_ready() -> dict[str, Any] | None:
            try:
                response = await client.get(f"http://127.0.0.1:{bot.port}/ready")
            except httpx.TransportError:
                return None
            return dict(response.json()) if response.status_code == 503 else None

        waiting = await eventually(not_ready, "/ready answering 503", timeout=30, interval=0.1)
        telegram.send_text("are you there?")
        await asyncio.sleep(1.0)  # several schema checks: nothing is taken from Telegram meanwhile
        polled_before = [method for method, _ in telegram.calls if method == "getUpdates"]
        engine = create_async_engine(empty_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        [reply] = await telegram.wait_for_messages(USER, 1, timeout=30)
        ready = await client.get(f"http://127.0.0.1:{bot.port}/ready")
        assert await bot.stop() == 0

    assert waiting["reasons"] == ["database schema is missing: waiting for the migrations"]
    assert polled_before == []
    assert reply.text == "echo: are you there?"
    assert ready.status_code == 200
    events = log_events(bot.output)
    assert [e["event"] for e in events if e["event"] == "waiting_for_migrations"] == [
        "waiting_for_migrations"
    ]
    assert [e for e in events if e.get("level") in ("error", "critical")] == []


async def test_webhook_answers_503_until_the_update_is_stored(
    dedicated_postgres: DedicatedPostgres, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    env = bot_process_environment(dedicated_postgres.url, telegram, llm)
    port = int(env["BOT_PORT"])
    env.update(
        BOT_MODE="webhook",
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        TELEGRAM_WEBHOOK_SECRET="webhook-secret",
    )
    update = telegram.text_update("through the webhook")
    async with BotProcess(env) as bot:
        await bot.start(telegram)
        dedicated_postgres.stop()
        during = await telegram.deliver_webhook(update, update_id=7001)
        dedicated_postgres.start()
        after = await telegram.deliver_webhook(update, update_id=7001)  # Telegram retries
        [reply] = await telegram.wait_for_messages(USER, 1, timeout=30)
        again = await telegram.deliver_webhook(update, update_id=7001)  # a late duplicate
        await settled_at(dedicated_postgres.url, USER)  # an answer to it would be here by now
        assert await bot.stop() == 0

    assert (during, after, again) == (503, 200, 200)
    assert reply.text == "echo: through the webhook"
    assert [m.text for m in telegram.messages_to(USER)] == ["echo: through the webhook"]


async def test_a_burst_a_split_paste_and_a_reused_update_id_as_a_process(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    burst_user, paste_user, quiet_user = 201, 202, 203
    env = bot_process_environment(database_url, telegram, llm)  # production rate limit and coalescing
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:  # this id was used a week ago, before Telegram started over
        await conn.execute(text("INSERT INTO telegram_updates VALUES (77000, now() - interval '8 days')"))
    await engine.dispose()
    paste = ["x" * 4096, "y" * 4096, "and the end"]
    llm.answer = lambda messages: f"answer to {len(messages[-1]['content'])} characters"
    llm.latency = 0.5
    async with BotProcess(env) as bot:
        await bot.start(telegram)
        for i in range(8):
            telegram.send_text(f"burst {i}", user_id=burst_user)
        for part in paste:
            telegram.send_text(part, user_id=paste_user)
        telegram.push_update(telegram.text_update("same id, new week", user_id=quiet_user), update_id=77000)
        await telegram.wait_for(
            lambda: (
                sorted(
                    part
                    for request in llm.requests
                    if request["messages"][-1]["content"].startswith("burst")
                    for part in request["messages"][-1]["content"].split("\n\n")
                )
                == [f"burst {i}" for i in range(8)]
            ),
            timeout=30,
        )
        await telegram.wait_for_messages(paste_user, 1, timeout=30)
        await telegram.wait_for_messages(quiet_user, 1, timeout=30)
        await settled_at(database_url, paste_user)  # any second answer to the paste would be here by now
        burst_requests = [r for r in llm.requests if r["messages"][-1]["content"].startswith("burst")]
        await telegram.wait_for_messages(burst_user, len(burst_requests), timeout=30)
        assert await bot.stop() == 0

    assert 1 < len(burst_requests) < 8  # the first at once, what came meanwhile as one turn
    assert len(telegram.messages_to(burst_user)) == len(burst_requests)
    assert not [m for m in telegram.messages_to(burst_user) if "did not take" in m.text]
    assert [m.text for m in telegram.messages_to(paste_user)] == [
        f"answer to {len(''.join(paste))} characters"
    ]
    assert [m.text for m in telegram.messages_to(quiet_user)] == ["answer to 17 characters"]
    rows = await stored(database_url, "SELECT count(*) AS n FROM messages WHERE role = 'user'")
    assert rows[0].n == 8 + 3 + 1
