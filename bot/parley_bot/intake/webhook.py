"""The webhook route: Telegram hears 200 only once the update is accepted (stored).

Telegram re-sends an update whose webhook request fails or is not answered within about 60 s. So
the route answers 200 after the update is accepted — for a text message, after it is stored and
queued, not after the answer — and 503 while the database is unavailable or the process drains:
Telegram then delivers it again later, to this replica or another.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from parley_bot import metrics
from parley_bot.intake.acceptance import Acceptance, settle_when_done
from parley_bot.lifecycle import Lifecycle
from parley_core.logging import get_logger

log = get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name, not a secret)
ACCEPT_TIMEOUT_SECONDS = 25.0  # well inside Telegram's ~60 s, so a slow store is retried, not doubled


def add_webhook_route(
    app: web.Application,
    *,
    path: str,
    secret: str,
    bot: Bot,
    lifecycle: Lifecycle,
    feed: Callable[[Update, Acceptance], Coroutine[Any, Any, Any]],
) -> None:
    """Serve POST ``path``: secret checked in constant time, 200 after acceptance, else 503."""
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.StreamResponse:
        if lifecycle.draining:
            return web.Response(status=503, text="draining")
        if lifecycle.starting is not None:
            return web.Response(status=503, text="starting; deliver it again")
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="unauthorized")
        try:
            update = Update.model_validate(await request.json(), context={"bot": bot})
        except (ValueError, ValidationError):
            return web.Response(status=400, text="not a Telegram update")
        acceptance = Acceptance()
        task = asyncio.create_task(feed(update, acceptance))
        lifecycle.track(task)
        settle_when_done(task, acceptance)
        if await acceptance.wait(ACCEPT_TIMEOUT_SECONDS):
            metrics.WEBHOOK_LAST_RECEIVED.set_to_current_time()
            return web.json_response({})
        log.warning("webhook_update_not_accepted", update_id=update.update_id)
        return web.Response(status=503, text="not stored yet; deliver it again")

    app.router.add_post(path, webhook)
