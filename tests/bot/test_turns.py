"""How messages become turns: bursts, split pastes, full queues, stale and re-used updates, a hanging
primary with the production timings, and replies Telegram refuses for good."""

from __future__ import annotations

import asyncio
import io
import json
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.settings import BotSettings
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import RunningBot, SettingsFactory, rows, running_bot, settled

DEFAULTS = BotSettings.model_fields


def questions(llm: LLMDouble) -> list[str]:
    """The question (last user message) the model got in each request."""
    return [request["messages"][-1]["content"] for request in llm.requests]


async def test_a_burst_of_eight_is_answered_completely_within_the_default_rate_limit(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(
        rate_limit_burst=DEFAULTS["rate_limit_burst"].default,
        rate_limit_per_minute=DEFAULTS["rate_limit_per_minute"].default,
    )
    llm.latency = 0.5
    sent = [f"burst message {i}" for i in range(8)]
    async with running_bot(settings, telegram):
        for text in sent:
            telegram.send_text(text)
        await telegram.wait_for(lambda: len(llm.requests) >= 1)
        # Every message reaches the model exactly once, and each request got its answer.
        await telegram.wait_for(
            lambda: (
                sorted(part for q in questions(llm) for part in q.split("\n\n")) == sorted(sent)
                and len(telegram.messages_to(USER)) == len(llm.requests)
            ),
            timeout=30,
        )

    assert len(llm.requests) < len(sent)  # what arrived while the model was busy became one turn
    assert all(not m.text.startswith("You are writing faster") for m in telegram.messages_to(USER))
    stored = await rows(engine, "SELECT role, count(*) AS n FROM messages GROUP BY role ORDER BY role")
    assert [(r.role, r.n) for r in stored] == [("assistant", len(llm.requests)), ("user", 8)]


async def test_a_paste_telegram_split_into_three_messages_is_one_question(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.answer = lambda messages: f"read {len(messages[-1]['content'])} characters"
    parts = ["a" * 4096, "b" * 4096, "the end"]
    for part in parts:
        telegram.send_text(part)
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert questions(llm) == ["".join(parts)]
    assert reply.text == f"read {len(''.join(parts))} characters"


async def test_a_question_answered_together_stays_whole_in_the_history(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    """A split paste answered as one question is read back whole by the next turn, not cut to its end."""
    llm.answer = lambda messages: f"read {len(messages[-1]['content'])} characters"
    parts = ["a" * 4096, "b" * 4096, "the end"]
    for part in parts:
        telegram.send_text(part)
    await telegram.wait_for_messages(USER, 1)
    telegram.send_text("and a follow-up")
    await telegram.wait_for_messages(USER, 2)

    history = [(m["role"], m["content"]) for m in llm.requests[1]["messages"][1:]]
    assert history == [
        ("user", "".join(parts)),
        ("assistant", f"read {len(''.join(parts))} characters"),
        ("user", "and a follow-up"),
    ]


async def test_an_update_id_reused_after_a_day_is_a_new_message(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings()
    async with running_bot(settings, telegram):
        telegram.push_update(telegram.text_update("a week ago"), update_id=9000)
        await telegram.wait_for_messages(USER, 1)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE telegram_updates SET seen_at = now() - interval '8 days'"))
    async with running_bot(settings, telegram):  # a quiet week later, Telegram counts from 9000 again
        telegram.push_update(telegram.text_update("today, same id"), update_id=9000)
        await telegram.wait_for_messages(USER, 2)

    assert questions(llm) == ["a week ago", "today, same id"]


async def test_a_message_beyond_the_queue_is_refused_with_a_reply_to_it(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.latency = 1.0
    async with running_bot(make_settings(bot_max_queued_messages=2, bot_coalesce_seconds=0), telegram):
        telegram.send_text("first")
        await telegram.wait_for(lambda: len(llm.requests) == 1)
        telegram.send_text("second")
        refused_id = telegram.send_text("third: one too many")
        answers = await telegram.wait_for_messages(USER, 3)

    refusal = next(m for m in answers if "did not take this one" in m.text)
    refused = next(u for u in telegram.calls if u[0] == "sendMessage" and "did not take" in u[1]["text"])
    assert refusal.reply_to == refused[1]["reply_parameters"]["message_id"]
    assert refused_id > 0
    assert questions(llm) == ["first", "second"]


async def test_a_message_that_waited_too_long_is_told_so_instead_of_answered(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    update = telegram.text_update("asked during a long outage")
    update["message"]["date"] = int(time.time()) - 20 * 60
    telegram.push_update(update)
    [reply] = await telegram.wait_for_messages(USER, 1)
    telegram.send_text("and a fresh one")
    await telegram.wait_for_messages(USER, 2)

    assert reply.text == "Sorry, I could not answer this in time. Please ask again."
    assert reply.reply_to == update["message"]["message_id"]
    assert questions(llm) == ["and a fresh one"]
    assert [m["role"] for m in llm.requests[0]["messages"]] == ["system", "user"]  # not in the history
    stored = await rows(engine, "SELECT role, content, unanswered FROM messages ORDER BY created_at")
    assert [(r.role, r.unanswered) for r in stored] == [("user", True), ("user", False), ("assistant", False)]


async def test_a_hanging_primary_with_the_default_timings_leaves_the_fallback_time_to_answer(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(
        **{
            name: DEFAULTS[name].default
            for name in (
                "llm_timeout_seconds",
                "llm_deadline_seconds",
                "llm_attempts_per_model",
                "llm_backoff_base_seconds",
                "llm_backoff_max_seconds",
            )
        }
    )
    llm.script(PRIMARY, script.hang())
    async with running_bot(settings, telegram):
        started = time.monotonic()
        telegram.send_text("are you there?")
        [reply] = await telegram.wait_for_messages(USER, 1, timeout=settings.llm_deadline_seconds)
        elapsed = time.monotonic() - started

    assert reply.text == "echo: are you there?"
    assert llm.models_called() == [PRIMARY, FALLBACK]
    assert settings.llm_timeout_seconds <= elapsed < settings.llm_deadline_seconds
    stored = await rows(engine, "SELECT model, fallback_used FROM messages WHERE role = 'assistant'")
    assert [(r.model, r.fallback_used) for r in stored] == [(FALLBACK, True)]


async def test_a_user_who_blocked_the_bot_is_a_warning_without_traceback_or_apology(
    log_output: io.StringIO, bot: RunningBot, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", times=2)
    telegram.send_text("hello")
    await telegram.wait_for(lambda: telegram.failures_left("sendMessage") == 1)
    telegram.send_text("/help")
    await telegram.wait_for(lambda: telegram.failures_left("sendMessage") == 0)
    telegram.send_text("unblocked again")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.text == "echo: unblocked again"
    assert [m for m, _ in telegram.calls].count("sendMessage") == 3  # no apology attempts
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    warnings = {line["event"]: line for line in lines if line["level"] == "warning"}
    assert "reply_undeliverable" in warnings
    assert warnings["user_blocked_bot"]["user_id"] == USER
    assert warnings["user_blocked_bot"]["chat_id"] == USER
    assert "exception" not in warnings["reply_undeliverable"]
    assert not [line for line in lines if line["level"] == "error"]
    assert await rows(engine, "SELECT 1 FROM bot_outbox") == []  # dropped, not retried forever


async def test_under_load_every_question_gets_exactly_one_answer(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    # Closed loop, as fast as the bot answers: each user's next message arrives while the answer to
    # the last one is still being recorded, the moment where a reply could be sent twice.
    users, per_user = 20, 8

    async def user(user_id: int) -> None:
        for i in range(per_user):
            _, answer = await telegram.ask(f"question {i} of {user_id}", user_id=user_id, timeout=30)
            assert answer.text == f"echo: question {i} of {user_id}"

    await asyncio.gather(*(user(5000 + n) for n in range(users)))
    await settled(engine, *(5000 + n for n in range(users)))  # a second copy would be sent by now

    for n in range(users):
        texts = [m.text for m in telegram.messages_to(5000 + n)]
        assert texts == [f"echo: question {i} of {5000 + n}" for i in range(per_user)]
    assert len(llm.requests) == users * per_user
