"""Running the bot in polling or webhook mode, and draining it on SIGTERM.

Shutdown, each step logged (``shutdown_step``):

1. the first SIGTERM/SIGINT marks the process draining: /ready turns 503, the webhook route
   answers 503 (Telegram retries the update later, on a replica that is not draining), polling
   stops taking updates;
2. in-flight replies get up to SHUTDOWN_TIMEOUT_SECONDS (30) to finish — aiogram's own polling
   shutdown does not wait for them, this does; whatever is still running then is cancelled (its
   lease is released, its user message stays stored);
3. polling mode confirms the handled updates to Telegram (getUpdates with the next offset), so a
   restart does not receive them again;
4. the Telegram session, LLM client, HTTP server and database pool are closed, logs flushed, and
   the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.types import BotCommand
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.health import create_health_app
from parley_bot.lifecycle import Lifecycle
from parley_bot.llm import LLMClient
from parley_core.logging import flush_logs, get_logger
from parley_core.repositories import users
from parley_core.settings import BotSettings

log = get_logger(__name__)

COMMANDS = [
    BotCommand(command="reset", description="Forget our conversation"),
    BotCommand(command="settings", description="Show your settings"),
    BotCommand(command="system", description="Set your own system prompt"),
    BotCommand(command="history", description="How many messages I keep in mind"),
    BotCommand(command="help", description="What I can do"),
]


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
        await bot.set_my_commands(COMMANDS)
    except Exception as exc:  # the command menu is a convenience; never a reason not to start
        log.warning("set_commands_failed", error=type(exc).__name__)


async def _clear_stale_leases(engine: AsyncEngine) -> None:
    """Leases left by a previous run of this (single, polling) process can only be stale."""
    try:
        async with engine.begin() as conn:
            cleared = await users.clear_leases(conn)
    except Exception as exc:  # the database may be down at start; /ready says so, leases expire anyway
        log.warning("stale_leases_not_cleared", error=type(exc).__name__)
        return
    if cleared:
        log.info("stale_leases_cleared", count=cleared)


async def _poll(
    *, dp: Dispatcher, bot: Bot, engine: AsyncEngine, settings: BotSettings, lifecycle: Lifecycle
) -> None:
    """Long polling until asked to stop. Exactly one replica may poll: a second one gets 409 Conflict."""
    await _clear_stale_leases(engine)
    await bot.delete_webhook(drop_pending_updates=False)
    await _announce_commands(bot)
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=settings.telegram_polling_timeout_seconds,
        )
    )
    lifecycle.update_loop = polling
    stop = asyncio.create_task(lifecycle.stop_requested.wait())
    done, _ = await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
    if polling in done:
        stop.cancel()
        polling.result()  # re-raises why polling ended
        return
    log.info("shutdown_step", step="stopping polling")
    await dp.stop_polling()
    with contextlib.suppress(asyncio.CancelledError):
        await polling


async def _confirm_updates(bot: Bot, lifecycle: Lifecycle) -> None:
    """Tell Telegram every handled update is done, so a restart does not get them again."""
    if lifecycle.highest_update_id is None:
        return
    try:
        await bot(GetUpdates(offset=lifecycle.highest_update_id + 1, limit=1, timeout=0))
        log.info("shutdown_step", step="confirmed updates", up_to=lifecycle.highest_update_id)
    except Exception as exc:  # they will be re-delivered and recognised as duplicates instead
        log.warning("confirm_updates_failed", error=type(exc).__name__)


def _add_webhook_route(
    *, dp: Dispatcher, bot: Bot, settings: BotSettings, app: web.Application, lifecycle: Lifecycle
) -> None:
    """The webhook route: secret token verified by aiogram, 503 while draining."""
    assert settings.telegram_webhook_secret is not None
    handler = SimpleRequestHandler(
        dp, bot, secret_token=settings.telegram_webhook_secret.get_secret_value(), handle_in_background=True
    )

    async def webhook(request: web.Request) -> web.StreamResponse:
        if lifecycle.draining:
            # Telegram retries a failed delivery; another replica (or our successor) takes it.
            return web.Response(status=503, text="draining")
        return await handler.handle(request)

    app.router.add_post(settings.telegram_webhook_path, webhook)


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
    await lifecycle.stop_requested.wait()
    # The webhook stays registered: other replicas keep serving it.


async def serve(
    *,
    settings: BotSettings,
    dp: Dispatcher,
    bot: Bot,
    engine: AsyncEngine,
    llm: LLMClient,
    lifecycle: Lifecycle,
    handle_signals: bool = True,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``lifecycle.request_stop()``), then drain and close everything."""
    app = create_health_app(lifecycle=lifecycle, engine=engine, settings=settings)
    if handle_signals:
        install_signal_handlers(lifecycle)
    runner: web.AppRunner | None = None
    try:
        if settings.bot_mode == "webhook":
            _add_webhook_route(dp=dp, bot=bot, settings=settings, app=app, lifecycle=lifecycle)
            runner = await _start_http(app, settings)
            await _webhook(dp=dp, bot=bot, settings=settings, lifecycle=lifecycle)
        else:
            runner = await _start_http(app, settings)
            await _poll(dp=dp, bot=bot, engine=engine, settings=settings, lifecycle=lifecycle)
    finally:
        lifecycle.draining = True
        await _shutdown(
            settings=settings, bot=bot, engine=engine, llm=llm, lifecycle=lifecycle, runner=runner
        )


async def _start_http(app: web.Application, settings: BotSettings) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.bot_host, settings.bot_port).start()
    log.info("bot_listening", host=settings.bot_host, port=settings.bot_port, mode=settings.bot_mode)
    return runner


async def _shutdown(
    *,
    settings: BotSettings,
    bot: Bot,
    engine: AsyncEngine,
    llm: LLMClient,
    lifecycle: Lifecycle,
    runner: web.AppRunner | None,
) -> None:
    log.info("shutdown_step", step="waiting for in-flight replies", inflight=len(lifecycle.inflight))
    still_running = await lifecycle.wait_idle(settings.shutdown_timeout_seconds)
    if still_running:
        log.warning("shutdown_step", step="cancelling unfinished replies", count=still_running)
        tasks = [task for task in lifecycle.inflight if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    else:
        log.info("shutdown_step", step="in-flight replies finished")
    if settings.bot_mode == "polling":
        await _confirm_updates(bot, lifecycle)
    log.info("shutdown_step", step="closing Telegram and LLM sessions")
    await bot.session.close()
    await llm.close()
    if runner is not None:
        log.info("shutdown_step", step="stopping HTTP server")
        await runner.cleanup()
    log.info("shutdown_step", step="closing database pool")
    await engine.dispose()
    log.info("bot_stopped")
    flush_logs()
