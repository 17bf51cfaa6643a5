"""Webhook mode exports what Telegram reports (getWebhookInfo), so an idle webhook can alert."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, running_bot


def _gauge(gauge: object) -> float:
    return float(gauge._value.get())  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fresh_gauges() -> None:
    """The gauges are the process's: start each test from what a new process reports."""
    for gauge in (
        metrics.WEBHOOK_REGISTERED,
        metrics.WEBHOOK_PENDING_UPDATES,
        metrics.WEBHOOK_LAST_ERROR,
        metrics.WEBHOOK_LAST_RECEIVED,
    ):
        gauge.set(0)


async def test_webhook_gauges_follow_telegram_and_deliveries(
    make_settings: SettingsFactory, telegram: TelegramDouble, engine: AsyncEngine
) -> None:
    """Pending count and last error come from Telegram; last received moves only on an accepted update."""
    port = make_settings().bot_port
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    settings = make_settings(
        bot_mode="webhook",
        telegram_webhook_secret="s3cret-token",
        telegram_webhook_url=url,
        telegram_webhook_check_seconds=0.1,
        bot_port=port,
    )
    started = time.time()
    async with running_bot(settings, telegram):
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_REGISTERED) == 1)
        assert _gauge(metrics.DATABASE_UP) == 1
        assert _gauge(metrics.WEBHOOK_LAST_RECEIVED) >= started - 1  # the start counts until an update
        before = _gauge(metrics.WEBHOOK_LAST_RECEIVED)

        telegram.webhook_pending = 7
        assert await telegram.deliver_webhook(telegram.text_update("forged"), secret="wrong") == 401
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_PENDING_UPDATES) == 7)
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_LAST_ERROR) > 0)
        assert telegram.webhook_last_error is not None
        assert _gauge(metrics.WEBHOOK_LAST_ERROR) == telegram.webhook_last_error[0]
        assert _gauge(metrics.WEBHOOK_LAST_RECEIVED) == before  # a refused POST is not a delivery

        assert await telegram.deliver_webhook(telegram.text_update("hello")) == 200
        await telegram.wait_for_messages(USER, 1)
        assert _gauge(metrics.WEBHOOK_LAST_RECEIVED) >= telegram.webhook_last_error[0]

        telegram.webhook_url = "https://elsewhere.example/hook"  # someone re-pointed the webhook
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_REGISTERED) == 0)


async def test_webhook_watch_survives_telegram_errors(
    make_settings: SettingsFactory, telegram: TelegramDouble
) -> None:
    """getWebhookInfo failing (Telegram unreachable) keeps the last values and keeps asking."""
    port = make_settings().bot_port
    settings = make_settings(
        bot_mode="webhook",
        telegram_webhook_secret="s3cret-token",
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
        telegram_webhook_check_seconds=0.1,
        bot_port=port,
    )
    async with running_bot(settings, telegram):
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_REGISTERED) == 1)
        telegram.fail("getWebhookInfo", 502, "Bad Gateway", times=3)
        telegram.webhook_pending = 3
        await telegram.wait_for(lambda: telegram.failures_left("getWebhookInfo") == 0)
        await telegram.wait_for(lambda: _gauge(metrics.WEBHOOK_PENDING_UPDATES) == 3)
