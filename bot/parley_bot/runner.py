"""Running the bot in polling or webhook mode, and draining it on SIGTERM.

Start-up: the first heartbeat (``services/recovery.py``) runs before any update is taken — in
polling mode it also declares earlier processes dead and resumes their unanswered messages — then
updates come in through ``intake`` (confirmed to Telegram only once stored).

Shutdown, each step logged (``shutdown_step``):

1. the first SIGTERM/SIGINT marks the process draining: /ready turns 503, the webhook route
   answers 503 (Telegram retries the update later, on a replica that is not draining), polling
   stops taking updates (what it fetched but did not accept stays unconfirmed);
2. in-flight updates and turns get up to SHUTDOWN_TIMEOUT_SECONDS (30) to finish; whatever is
   still running then is cancelled — its messages stay queued and its lease is given back, so the
   next process answers them;
3. polling mode confirms the accepted updates to Telegram (getUpdates with the next offset);
4. the heartbeat stops and the process's leases are given back;
5. the Telegram session, LLM client, HTTP server and database pool are closed, logs flushed, and
   the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import BotCommand, Update
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.health import create_health_app
from parley_bot.i18n import DEFAULT_LOCALE, LOCALES, N_, _, use_locale
from parley_bot.intake import Acceptance, PollingIntake, WebhookWatch, add_webhook_route
from parley_bot.lifecycle import Lifecycle
from parley_bot.llm import LLMClient
from parley_bot.services.recovery import Recovery
from parley_bot.services.schema import wait_for_schema
from parley_bot.services.turns import TurnRunner
from parley_core.logging import flush_logs, get_logger
from parley_core.settings import BotSettings

log = get_logger(__name__)

COMMANDS = [
    ("reset", N_("Forget our conversation")),
    ("settings", N_("Show your settings")),
    ("system", N_("Set your own system prompt")),
    ("history", N_("How many messages I keep in mind")),
    ("model", N_("Pick the model that answers you")),
    ("retry", N_("Answer my last question again")),
    ("usage", N_("What you used and what is left")),
    ("language", N_("Pick the language I speak")),
    ("help", N_("What I can do")),
]


def command_menu(locale: str) -> list[BotCommand]:
    """The command menu with its descriptions in ``locale``."""
    with use_locale(locale):
        return [BotCommand(command=command, description=_(description)) for command, description in COMMANDS]


def install_signal_handlers(lifecycle: Lifecycle) -> None:
    """SIGTERM and SIGINT start a graceful shutdown."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):

        def on_signal(sig: signal.Signals = sig) -> None:
            log.info("shutdown_signal", signal=sig.name, already_draining=lifecycle.draining)
            lifecycle.request_stop()

        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / Windows
            loop.add_signal_handler(sig, on_signal)


async def _announce_commands(bot: Bot) -> None:
    try:
        # The default menu (users whose language has no catalogue) is English; each other
        # language gets its own, which Telegram shows to users with that interface language.
        await bot.set_my_commands(command_menu(DEFAULT_LOCALE))
        for locale in LOCALES:
            if locale != DEFAULT_LOCALE:
                await bot.set_my_commands(command_menu(locale), language_code=locale)
    except Exception as exc:  # the command menu is a convenience; never a reason not to start
        log.warning("set_commands_failed", error=type(exc).__name__)


def _feeder(dp: Dispatcher, bot: Bot) -> Any:
    async def feed(update: Update, acceptance: Acceptance) -> Any:
        return await dp.feed_update(bot, update, acceptance=acceptance)

    return feed


async def _poll(*, dp: Dispatcher, bot: Bot, settings: BotSettings, lifecycle: Lifecycle) -> PollingIntake:
    """Long polling until asked to stop. Exactly one replica may poll: a second one gets 409 Conflict."""
    await bot.delete_webhook(drop_pending_updates=False)
    await _announce_commands(bot)
    intake = PollingIntake(
        bot=bot,
        dp=dp,
        lifecycle=lifecycle,
        polling_timeout=settings.telegram_polling_timeout_seconds,
        backoff_max_seconds=settings.bot_intake_backoff_max_seconds,
        feed=_feeder(dp, bot),
    )
    polling = asyncio.create_task(intake.run(), name="polling")
    lifecycle.update_loop = polling
    log.info("polling_started")
    stop = asyncio.create_task(lifecycle.stop_requested.wait())
    done, _ = await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
    if polling in done:
        stop.cancel()
        polling.result()  # re-raises why polling ended
        return intake
    log.info("shutdown_step", step="stopping polling")
    await polling
    return intake


async def _webhook(*, dp: Dispatcher, bot: Bot, settings: BotSettings, lifecycle: Lifecycle) -> None:
    """Register the webhook with Telegram and serve until asked to stop. Safe with several replicas."""
    assert settings.telegram_webhook_url
    assert settings.telegram_webhook_secret
    await bot.me()  # fail fast on a bad token
    await bot.set_webhook(
        settings.telegram_webhook_url,
        secret_token=settings.telegram_webhook_secret.get_secret_value(),
        allowed_updates=dp.resolve_used_update_types(),
        drop_pending_updates=False,
    )
    await _announce_commands(bot)
    log.info("webhook_set", path=settings.telegram_webhook_path)
    watch = WebhookWatch(
        bot, url=settings.telegram_webhook_url, interval=settings.telegram_webhook_check_seconds
    )
    watch.start()
    try:
        await lifecycle.stop_requested.wait()
    finally:
        await watch.stop()
    # The webhook stays registered: other replicas keep serving it.


@dataclass(frozen=True)
class BotProcess:
    """What one bot process serves with and, at shutdown, closes in order."""

    settings: BotSettings
    lifecycle: Lifecycle
    dp: Dispatcher
    bot: Bot
    engine: AsyncEngine
    llm: LLMClient
    turns: TurnRunner
    recovery: Recovery


async def serve(process: BotProcess, *, handle_signals: bool = True) -> None:
    """Serve until SIGTERM/SIGINT (or ``lifecycle.request_stop()``), then drain and close everything."""
    settings, lifecycle, dp, bot = process.settings, process.lifecycle, process.dp, process.bot
    app = create_health_app(lifecycle=lifecycle, engine=process.engine, settings=settings)
    if handle_signals:
        install_signal_handlers(lifecycle)
    runner: web.AppRunner | None = None
    intake: PollingIntake | None = None
    try:
        if settings.bot_mode == "webhook":
            assert settings.telegram_webhook_secret is not None
            add_webhook_route(  # answers 503 until the process has started
                app,
                path=settings.telegram_webhook_path,
                secret=settings.telegram_webhook_secret.get_secret_value(),
                bot=bot,
                lifecycle=lifecycle,
                feed=_feeder(dp, bot),
            )
        runner = await _start_http(app, settings)  # the probes answer while the schema is waited for
        if not await wait_for_schema(process.engine, lifecycle):
            return
        await process.recovery.start()
        process.turns.stops.start()
        lifecycle.starting = None
        if settings.bot_mode == "webhook":
            await _webhook(dp=dp, bot=bot, settings=settings, lifecycle=lifecycle)
        else:
            intake = await _poll(dp=dp, bot=bot, settings=settings, lifecycle=lifecycle)
    finally:
        lifecycle.draining = True
        await _shutdown(process, runner=runner, intake=intake)


async def _start_http(app: web.Application, settings: BotSettings) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.bot_host, settings.bot_port).start()
    log.info("bot_listening", host=settings.bot_host, port=settings.bot_port, mode=settings.bot_mode)
    return runner


async def _shutdown(
    process: BotProcess, *, runner: web.AppRunner | None, intake: PollingIntake | None
) -> None:
    lifecycle = process.lifecycle
    log.info("shutdown_step", step="waiting for in-flight replies", inflight=len(lifecycle.inflight))
    # One budget for the whole drain, inside the pod's termination grace period.
    deadline = time.monotonic() + process.settings.shutdown_timeout_seconds
    still_running = await lifecycle.wait_idle(process.settings.shutdown_timeout_seconds)
    if still_running:
        log.warning("shutdown_step", step="cancelling unfinished replies", count=still_running)
        tasks = [task for task in lifecycle.inflight if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    else:
        log.info("shutdown_step", step="in-flight replies finished")
    await process.turns.close(max(1.0, deadline - time.monotonic()))  # at least one batch of removals
    if intake is not None:
        await intake.confirm()
    log.info("shutdown_step", step="giving back leases")
    await process.recovery.stop()
    await process.turns.stops.close()
    log.info("shutdown_step", step="closing Telegram and LLM sessions")
    await process.bot.session.close()
    await process.llm.close()
    if runner is not None:
        log.info("shutdown_step", step="stopping HTTP server")
        await runner.cleanup()
    log.info("shutdown_step", step="closing database pool")
    await process.engine.dispose()
    log.info("bot_stopped")
    flush_logs()
