"""Error handlers: clear 4xx/503 bodies, never a 500 with a stack trace, never the input echoed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


def _public_error(error: dict[str, Any]) -> dict[str, Any]:
    public: dict[str, Any] = {key: error[key] for key in ("type", "loc", "msg") if key in error}
    if ctx := error.get("ctx"):
        public["ctx"] = {key: str(value) for key, value in ctx.items()}
    return public


async def handle_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming what failed, without the input: it may be a password, or a value JSON cannot carry (NaN)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": [_public_error(e) for e in exc.errors()]})


def register_error_handlers(app: FastAPI) -> None:
    """Attach every handler of this module to ``app``."""
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    for exc_type in (OperationalError, DBAPIError, PoolTimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(exc_type, handle_database_unavailable)
