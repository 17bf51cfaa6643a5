"""What each answer cost: the gateway's own figure, else the price table, else nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.settings import ModelPrice
from parley_testing.doubles.llm import LLMDouble, stream_error
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows, running_bot, settled

COST_SQL = (
    "SELECT prompt_tokens, completion_tokens, cost_usd FROM messages"
    " WHERE user_id = :u AND role = 'assistant' ORDER BY created_at"
)


def _spent(model: str) -> float:
    return REGISTRY.get_sample_value("llm_cost_usd_total", {"model": model}) or 0.0


def _stored(value: float) -> Decimal:
    """A cost as messages.cost_usd keeps it: ten decimal places."""
    return Decimal(repr(value)).quantize(Decimal("1e-10"))


@pytest.mark.parametrize("stream", ["off", "edit"])
async def test_an_answer_records_the_cost_the_gateway_reports(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine, stream: str
) -> None:
    llm.prices[PRIMARY] = (3.0, 15.0)
    before = _spent(PRIMARY)
    # A price table that disagrees: the gateway's figure wins.
    settings = make_settings(stream_replies=stream, llm_prices={PRIMARY: {"prompt": 100, "completion": 100}})
    async with running_bot(settings, telegram):
        telegram.send_text("What does this cost?")
        await telegram.wait_for_messages(USER, 1)

    [answer] = await rows(engine, COST_SQL, u=USER)
    expected = llm.cost_of(PRIMARY, answer.prompt_tokens, answer.completion_tokens)
    assert expected > 0
    assert answer.cost_usd == _stored(expected)
    assert _spent(PRIMARY) == pytest.approx(before + expected)


async def test_without_a_reported_cost_the_price_table_prices_the_answer(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.report_cost = False
    price = ModelPrice(prompt=0.25, completion=2.0)
    async with running_bot(make_settings(llm_prices={PRIMARY: price.model_dump()}), telegram):
        telegram.send_text("And without a bill?")
        await telegram.wait_for_messages(USER, 1)

    [answer] = await rows(engine, COST_SQL, u=USER)
    assert answer.cost_usd == _stored(price.cost(answer.prompt_tokens, answer.completion_tokens))


async def test_a_model_nobody_prices_has_no_cost(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.report_cost = False
    before = _spent(PRIMARY)
    async with running_bot(make_settings(), telegram):
        telegram.send_text("Free?")
        await telegram.wait_for_messages(USER, 1)

    [answer] = await rows(engine, COST_SQL, u=USER)
    assert answer.prompt_tokens > 0
    assert answer.cost_usd is None
    assert _spent(PRIMARY) == before


async def test_an_attempt_that_broke_off_midway_counts_against_the_budget_too(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.chunk_words = 1
    llm.script(PRIMARY, stream_error())  # two words, then the provider fails: those words are billed
    before = _tokens(PRIMARY, "completion")
    settings = make_settings(
        stream_replies="edit", llm_prices={PRIMARY: {"prompt": 1_000, "completion": 2_000}}
    )
    async with running_bot(settings, telegram):
        telegram.send_text("a question of some length")
        await telegram.wait_for(
            lambda: any(m.text == "echo: a question of some length" for m in telegram.sent)
        )
        await settled(engine, USER)
    [answer] = await rows(engine, COST_SQL, u=USER)
    [ledger] = await rows(engine, "SELECT tokens, cost_usd FROM usage_counters WHERE user_id = :u", u=USER)
    # The answer of the next attempt, plus an estimate of the broken one (4 characters a token).
    assert ledger.tokens > answer.prompt_tokens + answer.completion_tokens
    assert ledger.cost_usd > (answer.cost_usd or 0)
    assert _tokens(PRIMARY, "completion") > before


def _tokens(model: str, kind: str) -> float:
    return REGISTRY.get_sample_value("llm_tokens_total", {"model": model, "kind": kind}) or 0.0
