"""What Telegram says about the webhook, exported as metrics: is it still posting to us?

In webhook mode nothing inside the process notices that Telegram stopped posting — a URL pointing
elsewhere after a DNS or Ingress change, a certificate Telegram rejects, a proxy answering 404:
the process is healthy and merely idle. Telegram knows: getWebhookInfo reports the URL it posts
to, how many updates wait, and when a delivery last failed. Every TELEGRAM_WEBHOOK_CHECK_SECONDS
each replica asks and exports the answer next to the time it last accepted an update; the
ParleyBotWebhookNotReceiving alert compares them.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Bot

from parley_bot import metrics
from parley_core.logging import get_logger

log = get_logger(__name__)


class WebhookWatch:
    """Polls getWebhookInfo in the background; a failed call is logged and tried again later."""

    def __init__(self, bot: Bot, *, url: str, interval: float) -> None:
        self.bot = bot
        self.url = url
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._last_error_at: float | None = None

    def start(self) -> None:
        """Begin watching; until the first update arrives, "last received" is the start."""
        metrics.WEBHOOK_LAST_RECEIVED.set_to_current_time()
        self._task = asyncio.create_task(self._loop(), name="webhook-watch")

    async def stop(self) -> None:
        """Stop watching (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        """Ask Telegram once and export the answer."""
        try:
            info = await self.bot.get_webhook_info()
        except Exception as exc:  # Telegram unreachable: the gauges keep their last values
            if not self._failing:
                log.warning("webhook_info_failed", error=type(exc).__name__)
            self._failing = True
            return
        self._failing = False
        metrics.WEBHOOK_PENDING_UPDATES.set(info.pending_update_count)
        metrics.WEBHOOK_REGISTERED.set(1 if info.url == self.url else 0)
        if info.url != self.url:
            log.warning("webhook_not_registered", registered=bool(info.url))
        if info.last_error_date is not None:
            error_at = info.last_error_date.timestamp()
            metrics.WEBHOOK_LAST_ERROR.set(error_at)
            if error_at != self._last_error_at:
                self._last_error_at = error_at
                log.warning(
                    "webhook_delivery_failed",
                    telegram_says=info.last_error_message,
                    pending=info.pending_update_count,
                )

    async def _loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)
