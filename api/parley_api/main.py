"""The FastAPI application factory: the lifespan makes the AppState (and closes it), then the routers
and the middleware, in the order they wrap each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from parley_api.auth.basic import Authenticator
from parley_api.auth.routes import router as auth_router
from parley_api.budgets.routes import router as budgets_router
from parley_api.dashboard.routes import router as dashboard_router
from parley_api.errors import register_error_handlers
from parley_api.health.routes import router as health_router
from parley_api.plumbing.api_docs import install_docs
from parley_api.plumbing.body_limit import BodySizeLimit
from parley_api.plumbing.cors import install_cors
from parley_api.plumbing.database_probe import probe_database_forever
from parley_api.plumbing.management import ManagementPortGate
from parley_api.plumbing.metrics import create_metrics, install_metrics
from parley_api.plumbing.ratelimit import RateLimiter
from parley_api.state import AppState
from parley_api.stats.result_cache import StatsResultCache
from parley_api.stats.routes import router as stats_router
from parley_core.db import create_engine
from parley_core.logging import flush_logs, get_logger
from parley_core.settings import ApiSettings

log = get_logger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    """Build the app for ``settings``; nothing connects to the database until a request needs it."""
    metrics = create_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, application_name="parley-api")
        metrics.watch_engine(engine)
        state = AppState(
            settings=settings,
            engine=engine,
            metrics=metrics,
            stats_cache=StatsResultCache(settings.stats_cache_seconds),
            authenticator=Authenticator.from_settings(settings),
            rate_limiter=RateLimiter.from_settings(settings),
        )
        app.state.parley = state
        probe = asyncio.create_task(
            probe_database_forever(engine, metrics.database_up, timeout=settings.ready_db_timeout_seconds),
            name="database-probe",
        )
        log.info("api_started", environment=settings.environment)
        try:
            yield
        finally:
            state.draining = True
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            log.info("api_stopping", step="closing database pool")
            await engine.dispose()
            state.authenticator.close()
            log.info("api_stopped")
            flush_logs()

    app = FastAPI(
        title="Parley API",
        version=version("parley-api"),
        summary="Stats API and dashboard of the Parley Telegram assistant",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from install_docs: vendored assets, no CDN
        redoc_url=None,
    )
    register_error_handlers(app)
    install_metrics(app, metrics)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(stats_router)
    app.include_router(budgets_router)
    app.include_router(dashboard_router)
    install_docs(app)
    install_cors(app, settings)  # so it wraps every response, errors included
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    # Outermost: a path served on the other port is not found here, whatever the route table says.
    app.add_middleware(ManagementPortGate, management_port=settings.api_management_port)
    return app
