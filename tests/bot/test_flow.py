"""The message flow's guarantees: dedupe, per-user serialization, context trimming, webhook, probes."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.services.summaries import INSTRUCTIONS
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.waiting import eventually
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import RunningBot, SettingsFactory, get, rows, running_bot


async def test_duplicate_updates_are_answered_once_even_after_a_restart(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings()
    update = telegram.text_update("only once")
    async with running_bot(settings, telegram):
        telegram.push_update(update, update_id=5000)
        await telegram.wait_for_messages(USER, 1)
        telegram.push_update(update, update_id=5000)  # a webhook retry or a re-polled batch
        await telegram.wait_for(lambda: not telegram.updates)
    async with running_bot(settings, telegram):  # a new process: only the database remembers
        telegram.push_update(update, update_id=5000)
        await telegram.wait_for(lambda: not telegram.updates)
        telegram.send_text("sentinel")
        await telegram.wait_for_messages(USER, 2)

    assert [m.text for m in telegram.messages_to(USER)] == ["echo: only once", "echo: sentinel"]
    assert [r["messages"][-1]["content"] for r in llm.requests] == ["only once", "sentinel"]
    assert len(await rows(engine, "SELECT 1 FROM messages WHERE telegram_update_id = 5000")) == 1


async def test_messages_of_one_user_never_interleave_and_a_burst_is_one_turn(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.latency = 0.3
    telegram.send_text("first")
    telegram.send_text("second")
    telegram.send_text("third")
    await telegram.wait_for_messages(USER, 2)

    prompts = [[m["content"] for m in r["messages"][1:]] for r in llm.requests]
    assert prompts == [
        ["first"],
        ["first", "echo: first", "second\n\nthird"],
    ]


async def test_context_too_long_trims_the_oldest_history_when_no_summary_can_be_made(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    async with running_bot(make_settings(), telegram):
        for i in range(4):
            telegram.send_text(f"message number {i} with several words in it")
            await telegram.wait_for_messages(USER, i + 1)
        # Too small for a summary request: its instructions alone take most of it.
        llm.context_tokens[PRIMARY] = 60
        before = len(llm.requests)
        telegram.send_text("the last one")
        replies = await telegram.wait_for_messages(USER, 5)

    assert replies[-1].text == "echo: the last one"
    too_long, trimmed = llm.requests[before], llm.requests[-1]
    assert any(r["messages"][0]["content"] == INSTRUCTIONS for r in llm.requests[before:])
    assert too_long["messages"][-1]["content"] == "the last one"
    assert len(trimmed["messages"]) < len(too_long["messages"])
    assert trimmed["messages"][-1]["content"] == "the last one"
    assert trimmed["model"] == PRIMARY


async def test_a_message_too_long_for_any_context_gets_a_polite_reply(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.context_tokens.update({PRIMARY: 3, FALLBACK: 3})
    async with running_bot(make_settings(), telegram):
        telegram.send_text("far too many words for this tiny model")
        [reply] = await telegram.wait_for_messages(USER, 1)

    assert "too long for the model" in reply.text


async def test_a_primary_that_times_out_is_not_asked_again_the_fallback_answers(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.script(PRIMARY, script.hang(), script.hang())
    async with running_bot(make_settings(llm_timeout_seconds=0.5), telegram):
        telegram.send_text("hello?")
        [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.text == "echo: hello?"
    assert llm.models_called() == [PRIMARY, FALLBACK]


async def test_webhook_mode_verifies_the_secret_token(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    settings = make_settings(
        bot_mode="webhook", telegram_webhook_secret="s3cret-token", telegram_webhook_url="x"
    )
    settings = make_settings(
        bot_mode="webhook",
        telegram_webhook_secret="s3cret-token",
        telegram_webhook_url=f"http://127.0.0.1:{settings.bot_port}/telegram/webhook",
        bot_port=settings.bot_port,
    )
    async with running_bot(settings, telegram):
        forged = await telegram.deliver_webhook(telegram.text_update("forged"), secret="wrong")
        missing = await telegram.deliver_webhook(telegram.text_update("no secret"), secret="")
        genuine = await telegram.deliver_webhook(telegram.text_update("genuine"))
        [reply] = await telegram.wait_for_messages(USER, 1)

    assert (forged, missing, genuine) == (401, 401, 200)
    assert reply.text == "echo: genuine"
    assert telegram.webhook_secret == "s3cret-token"
    assert [m["messages"][-1]["content"] for m in llm.requests] == ["genuine"]


async def test_probes_and_metrics(bot: RunningBot, telegram: TelegramDouble) -> None:
    telegram.send_text("count me")
    await telegram.wait_for_messages(USER, 1)

    health = await get(f"{bot.base_url}/health")
    ready = await get(f"{bot.base_url}/ready")
    exposition = (await get(f"{bot.base_url}/metrics")).text

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "up", "draining": False, "reasons": []}
    for name in (
        "llm_request_duration_seconds_bucket",
        "llm_requests_total",
        "llm_fallback_used_total",
        "telegram_messages_received_total",
        "telegram_messages_sent_total",
        "llm_tokens_total",
    ):
        assert name in exposition
    assert 'llm_requests_total{model="primary/model"}' in exposition
    [heartbeat] = [
        float(line.split()[1])
        for line in exposition.splitlines()
        if line.startswith("bot_update_loop_last_success_timestamp_seconds ")
    ]
    assert time.time() - 30 < heartbeat <= time.time()


async def test_failing_polls_keep_health_green_but_stop_the_success_heartbeat(
    bot: RunningBot, telegram: TelegramDouble
) -> None:
    conflict = "Conflict: terminated by other getUpdates request"
    telegram.fail("getUpdates", 409, conflict, times=3)  # a second poller with the same token
    await telegram.wait_for(lambda: telegram.failures_left("getUpdates") == 2, timeout=30)
    before = metrics.BOT_LAST_SUCCESSFUL_POLL._value.get()
    await telegram.wait_for(lambda: telegram.failures_left("getUpdates") == 0, timeout=30)

    health = await get(f"{bot.base_url}/health")

    assert health.status_code == 200  # a restart would not cure a 409
    assert metrics.BOT_LAST_SUCCESSFUL_POLL._value.get() == before > 0  # but the alert's gauge stopped
    telegram.send_text("still there?")
    await telegram.wait_for_messages(USER, 1, timeout=30)  # and polling recovers by itself
    assert metrics.BOT_LAST_SUCCESSFUL_POLL._value.get() > before


async def test_ready_is_503_while_draining_and_when_the_database_is_down(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.latency = 1.0
    async with running_bot(make_settings(), telegram) as handle:
        telegram.send_text("slow one")
        await telegram.wait_for(lambda: len(llm.requests) == 1)
        handle.lifecycle.request_stop()

        async def changed() -> httpx.Response | None:
            response = await get(f"{handle.base_url}/ready")
            return None if response.status_code == 200 else response

        draining = await eventually(
            changed, "/ready to change after the stop request", timeout=10, interval=0.05
        )
        await telegram.wait_for_messages(USER, 1)
        await asyncio.wait_for(handle.task, 30)
    async with running_bot(
        make_settings(database_url="postgresql://nobody@127.0.0.1:1/none"), telegram, serving=False
    ) as down:
        no_db = await get(f"{down.base_url}/ready")
        polled = [method for method, _ in telegram.calls if method == "getUpdates"]
        await down.stop()
        assert [method for method, _ in telegram.calls if method == "getUpdates"] == polled

    assert draining.status_code == 503
    assert draining.json()["reasons"] == ["shutting down"]
    assert no_db.status_code == 503
    assert no_db.json()["database"] == "down"
    assert no_db.json()["reasons"] == ["database unreachable"]


async def test_health_reports_a_dead_update_loop(bot: RunningBot) -> None:
    assert bot.lifecycle.update_loop is not None
    bot.lifecycle.last_poll_at = -1e9  # as if getUpdates had not returned for ages

    async with httpx.AsyncClient() as client:
        stalled = await client.get(f"{bot.base_url}/health")

    assert stalled.status_code == 503
    assert stalled.json()["status"] == "update_loop_stalled"


async def test_connections_killed_by_the_server_are_replaced_transparently(
    bot: RunningBot, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    telegram.send_text("before")
    await telegram.wait_for_messages(USER, 1)
    killed = await rows(
        engine,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'parley-bot'",
    )
    telegram.send_text("after the database dropped us")
    replies = await telegram.wait_for_messages(USER, 2)

    assert killed  # the bot's idle pooled connections were closed server-side
    assert replies[1].text == "echo: after the database dropped us"
