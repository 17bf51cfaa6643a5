"""Bot test fixtures: the Telegram and LLM doubles, settings pointing at them, a running bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.__main__ import run
from parley_bot.lifecycle import Lifecycle
from parley_core.settings import BotSettings, load_settings
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
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


SettingsFactory = Callable[..., BotSettings]


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


@dataclass
class RunningBot:
    """A bot serving in this test's event loop."""

    settings: BotSettings
    lifecycle: Lifecycle
    task: asyncio.Task[None]

    @property
    def base_url(self) -> str:
        """URL of its health/metrics server."""
        return f"http://127.0.0.1:{self.settings.bot_port}"

    async def stop(self) -> None:
        """Graceful stop, as on SIGTERM."""
        self.lifecycle.request_stop()
        await asyncio.wait_for(self.task, 30)


@asynccontextmanager
async def running_bot(settings: BotSettings, telegram: TelegramDouble) -> AsyncIterator[RunningBot]:
    """Start ``run(settings)`` and wait until it serves (polling: first getUpdates; webhook: set)."""
    lifecycle = Lifecycle()
    calls_before = len(telegram.calls)
    task = asyncio.create_task(run(settings, lifecycle=lifecycle, handle_signals=False))
    handle = RunningBot(settings, lifecycle, task)

    def started() -> bool:
        if task.done():
            return True
        methods = [method for method, _ in telegram.calls[calls_before:]]
        return ("getUpdates" in methods) if settings.bot_mode == "polling" else ("setWebhook" in methods)

    await telegram.wait_for(started, timeout=20)
    if task.done():
        task.result()
    try:
        yield handle
    finally:
        if not task.done():
            await handle.stop()


@pytest.fixture
async def bot(make_settings: SettingsFactory, telegram: TelegramDouble) -> AsyncIterator[RunningBot]:
    """A polling bot with the default test settings."""
    async with running_bot(make_settings(), telegram) as handle:
        yield handle


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    """Rows of a query (tests inspect the database directly)."""
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def get(url: str) -> httpx.Response:
    """GET without blocking the event loop the bot runs in."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)
