"""Per-user budgets end to end: refusal with the reset time, the warning, /usage, /budget, replicas."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.settings import BotSettings
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.waiting import eventually
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, post_update, rows, running_bot, webhook_replica

ADMIN = 7001
LEDGER_SQL = (
    "SELECT coalesce(sum(tokens), 0) AS tokens, coalesce(sum(cost_usd), 0) AS usd"
    " FROM usage_counters WHERE user_id = :u"
)
SPEND_SQL = (
    "INSERT INTO usage_counters (user_id, day, tokens, cost_usd, turns) VALUES (:u, :d, :t, :c, 1)"
    " ON CONFLICT (user_id, day) DO UPDATE SET tokens = usage_counters.tokens + EXCLUDED.tokens,"
    " cost_usd = usage_counters.cost_usd + EXCLUDED.cost_usd"
)
ANSWERS_SQL = (
    "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens, count(*) AS n FROM messages"
    " WHERE user_id = :u AND role = 'assistant'"
)


def _refusals(period: str, unit: str) -> float:
    return REGISTRY.get_sample_value("bot_budget_refusals_total", {"period": period, "unit": unit}) or 0.0


async def _spend(
    engine: AsyncEngine, user_id: int, *, tokens: int = 0, usd: str = "0", day: str = "today"
) -> None:
    """Put earlier consumption in the user's ledger (as earlier turns would have)."""
    today = datetime.now(UTC).date()
    when = today if day == "today" else today.replace(day=1)
    async with engine.begin() as conn:
        await conn.execute(text(SPEND_SQL), {"u": user_id, "d": when, "t": tokens, "c": Decimal(usd)})


async def test_a_used_up_daily_budget_is_a_polite_refusal_that_says_when_it_resets(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    before = _refusals("day", "tokens")
    async with running_bot(make_settings(budget_tokens_per_day=1), telegram):
        telegram.send_text("first question")
        await telegram.wait_for_messages(USER, 2)
        telegram.send_text("second question")
        messages = await telegram.wait_for_messages(USER, 3)

    answer, used_up, refusal = (m.text for m in messages)
    assert answer == "echo: first question"  # the turn that crosses the limit is answered in full
    assert used_up.startswith("That used up your daily budget (20 of 1 token); I can answer again at 00:00")
    assert refusal.startswith(
        "Sorry, you have used your daily budget (20 of 1 token). It resets at 00:00 UTC on "
    )
    assert llm.models_called() == [PRIMARY]  # the refused turn never reached the model
    assert _refusals("day", "tokens") == before + 1
    # The refused question stays stored but out of the history; the answer's tokens are in the ledger.
    [question] = await rows(engine, "SELECT unanswered FROM messages WHERE content = 'second question'")
    assert question.unanswered
    [ledger] = await rows(engine, LEDGER_SQL, u=USER)
    [answers] = await rows(engine, ANSWERS_SQL, u=USER)
    assert ledger.tokens == answers.tokens > 1


async def test_an_answer_that_crosses_80_percent_comes_with_a_warning_once(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    await _spend(engine, USER, tokens=790)
    async with running_bot(
        make_settings(budget_tokens_per_day=100_000, budget_tokens_per_month=1000), telegram
    ):
        telegram.send_text("one")
        first = await telegram.wait_for_messages(USER, 2)
        telegram.send_text("two")
        await telegram.wait_for_messages(USER, 3)
        await asyncio.sleep(0.3)  # a second warning would be sent with the answer

    texts = [m.text for m in telegram.messages_to(USER)]
    assert texts[0] == "echo: one"
    assert texts[1].startswith(
        "You have used 81% of your monthly budget (808 of 1,000 tokens); it resets at 00:00 UTC on 1 "
    )
    assert texts[2:] == ["echo: two"]  # about 850 of 1,000 tokens now: warned once, not again
    assert first[1].reply_to is None  # a private chat: plain messages


async def test_usage_shows_what_was_used_what_is_left_and_when_it_resets(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    await _spend(engine, USER, tokens=1234, usd="0.25")
    settings = make_settings(budget_tokens_per_day=10_000, budget_usd_per_month="1.5")
    async with running_bot(settings, telegram):
        telegram.send_text("/usage")
        [shown] = await telegram.wait_for_messages(USER, 1)

    assert "Your usage" in shown.text
    assert "Today: 1,234 tokens · $0.2500" in shown.text
    assert "• 1,234 of 10,000 tokens today — 8,766 tokens left, resets at 00:00 UTC on " in shown.text
    assert "• $0.2500 of $1.5000 this month — $1.2500 left, resets at 00:00 UTC on 1 " in shown.text


async def test_a_used_up_monthly_dollar_budget_refuses_until_the_month_ends(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    await _spend(engine, USER, usd="2.00", day="first of month")
    before = _refusals("month", "usd")
    async with running_bot(make_settings(budget_usd_per_month="2"), telegram):
        telegram.send_text("costly question")
        [refusal] = await telegram.wait_for_messages(USER, 1)

    assert refusal.text.startswith("Sorry, you have used your monthly budget ($2.0000 of $2.0000).")
    assert llm.models_called() == []
    assert _refusals("month", "usd") == before + 1


async def test_an_exempt_user_is_answered_whatever_the_ledger_says(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    await _spend(engine, USER, tokens=10_000)
    async with running_bot(
        make_settings(budget_tokens_per_day=10, budget_exempt_user_ids=str(USER)), telegram
    ):
        telegram.send_text("/usage")
        telegram.send_text("still here?")
        usage, answer = await telegram.wait_for_messages(USER, 2)

    assert "No budget applies." in usage.text
    assert answer.text == "echo: still here?"


async def test_reset_forgets_the_conversation_not_what_it_cost(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(budget_tokens_per_day=1), telegram):
        telegram.send_text("remember the cost")
        await telegram.wait_for_messages(USER, 2)  # the answer, and "that used up your budget"
        [spent] = await rows(engine, LEDGER_SQL, u=USER)
        telegram.send_text("/reset")
        await telegram.wait_for_messages(USER, 3)
        telegram.send_text("and now?")
        messages = await telegram.wait_for_messages(USER, 4)

    [after] = await rows(engine, LEDGER_SQL, u=USER)
    assert after.tokens == spent.tokens > 0
    assert messages[3].text.startswith("Sorry, you have used your daily budget")


async def test_admins_change_a_users_budget_with_a_command_and_others_may_not(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(bot_admin_user_ids=str(ADMIN))
    async with running_bot(settings, telegram):
        telegram.send_text(f"/budget {ADMIN} exempt")  # the user is no admin
        [denied] = await telegram.wait_for_messages(USER, 1)
        telegram.send_text(f"/budget {USER} tokens_day=0 usd_month=0.5", user_id=ADMIN)
        [changed] = await telegram.wait_for_messages(ADMIN, 1)
        telegram.send_text("may I?")
        [_, refused] = await telegram.wait_for_messages(USER, 2)
        telegram.send_text(f"/budget {USER} tokens_day=lots", user_id=ADMIN)
        telegram.send_text(f"/budget {USER} exempt", user_id=ADMIN)
        [_, invalid, exempted] = await telegram.wait_for_messages(ADMIN, 3)
        telegram.send_text("now?")
        [*_, answered] = await telegram.wait_for_messages(USER, 3)
        stored = await rows(
            engine, "SELECT exempt, usd_per_month, updated_by FROM user_budgets WHERE user_id = :u", u=USER
        )
        telegram.send_text(f"/budget {USER} default", user_id=ADMIN)
        await telegram.wait_for_messages(ADMIN, 4)

    assert denied.text == "Sorry, /budget is for the bot's admins."
    assert f"Budget of user {USER} (an override)" in changed.text
    assert "• 0 of 0 tokens today — used up" in changed.text
    assert "$0.5000 this month" in changed.text
    assert refused.text.startswith("Sorry, you have used your daily budget (0 of 0 tokens).")  # limit 0
    assert "tokens_day must be a number or default, not 'lots'" in invalid.text
    assert "No budget applies." in exempted.text
    assert answered.text == "echo: now?"
    assert [(s.exempt, s.usd_per_month, s.updated_by) for s in stored] == [
        (True, Decimal("0.500000"), f"telegram:{ADMIN}")
    ]
    assert await rows(engine, "SELECT 1 FROM user_budgets WHERE user_id = :u", u=USER) == []


async def test_two_replicas_answering_in_parallel_overspend_by_at_most_one_turn(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    users = [USER, USER + 1]
    limit = 300
    llm.latency = 0.05

    def replica() -> BotSettings:
        # A window that 24 messages per user do not overflow: every ledger entry is an answer's
        # (summaries count too, tests/bot/test_summaries.py).
        return webhook_replica(
            make_settings, bot_coalesce_seconds=0, budget_tokens_per_day=limit, history_default_messages=100
        )

    rng = random.Random(18)
    sent = 0
    async with running_bot(replica(), telegram) as one, running_bot(replica(), telegram) as two:
        for _wave in range(6):
            # Both users write to both replicas at once, in three groups each (a turn answers one
            # chat's waiting messages), so turns of one user are asked for in parallel everywhere.
            sends = []
            for user in users:
                for _ in range(4):
                    sent += 1
                    update = telegram.text_update(
                        f"@{telegram.bot_username} question {sent}",
                        user_id=user,
                        chat_id=-(user * 10 + rng.randrange(3)),
                        chat_type="group",
                    )
                    sends.append(post_update(rng.choice((one, two)), update, 90_000 + sent))
            assert set(await asyncio.gather(*sends)) == {200}
            await asyncio.sleep(0.2)
        await eventually(lambda: _settled(engine), "every message answered or refused", timeout=30)

    [worst] = await rows(
        engine,
        "SELECT max(prompt_tokens + completion_tokens) AS tokens FROM messages WHERE role = 'assistant'",
    )
    for user in users:
        [ledger] = await rows(engine, LEDGER_SQL, u=user)
        [answers] = await rows(engine, ANSWERS_SQL, u=user)
        [refused] = await rows(
            engine,
            "SELECT count(*) AS n FROM messages WHERE user_id = :u AND role = 'user' AND unanswered",
            u=user,
        )
        assert ledger.tokens == answers.tokens  # every answer counted, once
        assert limit <= ledger.tokens < limit + worst.tokens  # the limit was reached, crossed by one turn
        assert refused.n > 0
    refusals = [m for m in telegram.sent if m.text.startswith("Sorry, you have used your daily budget")]
    assert refusals


async def _settled(engine: AsyncEngine) -> bool | None:
    """True once every message is consumed and every reply delivered."""
    [row] = await rows(
        engine, "SELECT (SELECT count(*) FROM bot_inbox) + (SELECT count(*) FROM bot_outbox) AS left"
    )
    return True if row.left == 0 else None
