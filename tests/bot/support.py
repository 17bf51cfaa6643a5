"""Builders of the bot tests: a bot running in the test's event loop, and reading what it stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.__main__ import run
from parley_bot.lifecycle import Lifecycle
from parley_core.settings import BotSettings
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.waiting import eventually
from tools.localpg import free_port

SettingsFactory = Callable[..., BotSettings]


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
async def running_bot(
    settings: BotSettings, telegram: TelegramDouble, *, serving: bool = True
) -> AsyncIterator[RunningBot]:
    """Start ``run(settings)`` and wait until it serves (polling: first getUpdates; webhook: set) —
    or, with ``serving=False``, only until its probes answer (a bot still starting up)."""
    lifecycle = Lifecycle()
    calls_before = len(telegram.calls)
    task = asyncio.create_task(run(settings, lifecycle=lifecycle, handle_signals=False))
    handle = RunningBot(settings, lifecycle, task)

    def started() -> bool:
        if task.done():
            return True
        methods = [method for method, _ in telegram.calls[calls_before:]]
        return ("getUpdates" in methods) if settings.bot_mode == "polling" else ("setWebhook" in methods)

    async def probes_answer() -> bool:
        try:
            return task.done() or (await get(f"{handle.base_url}/health")).status_code > 0
        except httpx.TransportError:
            return False

    if serving:
        await telegram.wait_for(started, timeout=20)
    else:
        await eventually(probes_answer, "the bot's probes answering", timeout=20, interval=0.05)
    if task.done():
        task.result()
    try:
        yield handle
    finally:
        if not task.done():
            await handle.stop()


def webhook_replica(make_settings: SettingsFactory, **overrides: Any) -> BotSettings:
    """Settings of one more webhook replica on a free port (every replica shares the test's secret)."""
    port = free_port()
    return make_settings(
        bot_mode="webhook",
        bot_port=port,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
        telegram_webhook_secret="replica-secret",
        **overrides,
    )


async def post_update(bot: RunningBot, update: dict[str, Any], update_id: int) -> int:
    """POST an update straight to one webhook replica (as Telegram would to whichever it reaches)."""
    secret = bot.settings.telegram_webhook_secret
    assert secret is not None
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{bot.base_url}{bot.settings.telegram_webhook_path}",
            json={"update_id": update_id, **update},
            headers={"X-Telegram-Bot-Api-Secret-Token": secret.get_secret_value()},
        ) as response,
    ):
        return response.status


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    """Rows of a query (tests inspect the database directly)."""
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def get(url: str) -> httpx.Response:
    """GET without blocking the event loop the bot runs in."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


def pending_sql(chat_ids: Iterable[int]) -> str:
    """How many stored messages wait for an answer, and replies for delivery, in ``chat_ids``."""
    chats = ", ".join(str(int(chat)) for chat in chat_ids)
    return (
        "SELECT count(*) FROM (SELECT chat_id FROM bot_inbox UNION ALL SELECT chat_id FROM bot_outbox) AS p "  # noqa: S608
        f"WHERE chat_id IN ({chats})"
    )


async def settled(engine: AsyncEngine, *chat_ids: int, timeout: float = 30) -> None:
    """Wait until nothing is pending in ``chat_ids``: no stored message unanswered, no reply unsent.

    An answer is stored only by consuming its messages from bot_inbox, and a reply leaves bot_outbox
    only once Telegram accepted it: with both empty, every answer the bot will ever send to these
    chats has been sent, so a test can check that none came twice.
    """

    async def nothing_pending() -> bool:
        [(count,)] = await rows(engine, pending_sql(chat_ids))
        return bool(count == 0)

    await eventually(nothing_pending, f"nothing pending in chats {chat_ids}", timeout=timeout, interval=0.05)
