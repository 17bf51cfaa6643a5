"""The bot's HTTP server on BOT_PORT: /health, /ready, /metrics (and the webhook route in webhook mode).

/health is the liveness probe: 200 while the event loop answers and the update loop is alive
(polling: the getUpdates loop runs and completed a call recently); 503 means "restart me".
/ready is readiness: 200 when the process has started (the schema is migrated), the database
answers, incoming updates can be stored and the process is not draining, else 503.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.lifecycle import Lifecycle
from parley_core.db import check_database, pool_stats
from parley_core.settings import BotSettings

# A poll lasts TELEGRAM_POLLING_TIMEOUT_SECONDS; aiogram's backoff after errors adds up to a minute.
STALE_GRACE_SECONDS = 90.0

LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
ENGINE = web.AppKey("engine", AsyncEngine)
SETTINGS = web.AppKey("settings", BotSettings)


async def health(request: web.Request) -> web.Response:
    """Liveness: event loop and update loop alive."""
    lifecycle = request.app[LIFECYCLE]
    settings = request.app[SETTINGS]
    alive = lifecycle.update_loop_alive(
        stale_after=settings.telegram_polling_timeout_seconds + STALE_GRACE_SECONDS
    )
    body = {
        "status": "ok" if alive else "update_loop_stalled",
        "uptime_seconds": lifecycle.uptime_seconds,
        "mode": settings.bot_mode,
        "draining": lifecycle.draining,
        "inflight_updates": len(lifecycle.inflight),
        "pool": pool_stats(request.app[ENGINE]).as_dict(),
    }
    return web.json_response(body, status=200 if alive else 503)


async def ready(request: web.Request) -> web.Response:
    """Readiness: database reachable and not draining."""
    lifecycle = request.app[LIFECYCLE]
    check = await check_database(request.app[ENGINE], timeout=request.app[SETTINGS].ready_db_timeout_seconds)
    reasons = []
    if lifecycle.starting is not None:
        reasons.append(lifecycle.starting)
    elif not check.ok:
        reasons.append("database unreachable")
    elif lifecycle.intake_paused:
        reasons.append("updates wait until they can be stored")
    if lifecycle.draining:
        reasons.append("shutting down")
    body = {
        "status": "not_ready" if reasons else "ready",
        "database": "up" if check.ok else "down",
        "draining": lifecycle.draining,
        "reasons": reasons,
    }
    return web.json_response(body, status=503 if reasons else 200)


async def prometheus_metrics(_request: web.Request) -> web.Response:
    """Prometheus exposition of every metric of the process."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_health_app(*, lifecycle: Lifecycle, engine: AsyncEngine, settings: BotSettings) -> web.Application:
    """The aiohttp app serving the probes and metrics (the webhook route is added by the runner)."""
    app = web.Application()
    app[LIFECYCLE] = lifecycle
    app[ENGINE] = engine
    app[SETTINGS] = settings
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", prometheus_metrics)
    return app
