"""Bot test fixtures: the Telegram and LLM doubles, settings pointing at them, a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley_core.settings import BotSettings, load_settings
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.support import RunningBot, SettingsFactory, running_bot
from tools.localpg import free_port


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramDouble]:
    """A Telegram Bot API double on a free loopback port."""
    double = TelegramDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.close()


@pytest.fixture
async def llm() -> AsyncIterator[LLMDouble]:
    """An OpenAI-compatible double on a free loopback port."""
    double = LLMDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.close()


@pytest.fixture
def make_settings(database_url: str, telegram: TelegramDouble, llm: LLMDouble) -> SettingsFactory:
    """BotSettings on this test's database and the doubles; fast timings, streaming off unless asked."""

    def make(**overrides: Any) -> BotSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "db_pool_size": 5,
            "db_max_overflow": 5,
            "telegram_bot_token": telegram.token,
            "telegram_api_url": telegram.url,
            "llm_api_key": llm.api_key,
            "llm_base_url": llm.url,
            "llm_model": PRIMARY,
            "llm_fallback_model": FALLBACK,
            "llm_timeout_seconds": 2.0,
            "llm_deadline_seconds": 8.0,
            "llm_backoff_base_seconds": 0.01,
            "llm_backoff_max_seconds": 0.05,
            "bot_port": free_port(),
            "stream_replies": "off",
            "telegram_polling_timeout_seconds": 1,
            "telegram_global_per_second": 0,
            "telegram_chat_interval_seconds": 0,
            "telegram_group_per_minute": 0,
            "rate_limit_burst": 100,
            "rate_limit_per_minute": 6000,
            "shutdown_timeout_seconds": 10,
        }
        values.update(overrides)
        return load_settings(BotSettings, **values)

    return make


@pytest.fixture
async def bot(make_settings: SettingsFactory, telegram: TelegramDouble) -> AsyncIterator[RunningBot]:
    """A polling bot with the default test settings."""
    async with running_bot(make_settings(), telegram) as handle:
        yield handle
