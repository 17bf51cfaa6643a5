"""Error handlers: database trouble becomes a clear 503, never a 500 with a stack trace."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from parley_core.logging import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "5"


async def handle_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down or the pool stayed exhausted past DB_POOL_TIMEOUT: 503, retry later."""
    log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
    return JSONResponse(
        status_code=503,
        content={"detail": "database unavailable, retry later"},
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def register_error_handlers(app: FastAPI) -> None:
    """Attach every handler of this module to ``app``."""
    for exc_type in (OperationalError, DBAPIError, PoolTimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(exc_type, handle_database_unavailable)
