"""The error model of every route: the bodies, the OpenAPI `responses` the routes share, the handlers.

Errors are clear 4xx/503 bodies: never a 500 with a stack trace, never the input echoed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from parley_core.logging import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "5"


class ErrorPublic(BaseModel):
    """Every error body: a reason a person can act on."""

    detail: str


class RuleViolation(BaseModel):
    """One failed rule of a 422, shaped like FastAPI's validation errors."""

    type: str
    loc: list[str | int]
    msg: str


class RuleViolationsPublic(BaseModel):
    """A 422 body: every rule the request broke."""

    detail: list[RuleViolation]


Responses = dict[int | str, dict[str, Any]]

_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}

# OpenAPI `responses=` of a route that takes CurrentUserDep and a rate limit.
AUTHENTICATED_RESPONSES: Responses = {
    401: {
        "model": ErrorPublic,
        "description": "Missing, malformed or wrong Basic credentials, or an inactive account.",
        "headers": {
            "WWW-Authenticate": {
                "description": 'Basic realm="parley", charset="UTF-8"',
                "schema": {"type": "string"},
            }
        },
    },
    429: {
        "model": ErrorPublic,
        "description": "Rate limit exceeded (`Rate limit exceeded: 10 per 1 minute`) or too many "
        "failed logins for this username or address.",
        "headers": {"Retry-After": _RETRY_AFTER},
    },
}

# OpenAPI `responses=` of a route that reads the database (handle_database_unavailable).
DATABASE_UNAVAILABLE_RESPONSES: Responses = {
    503: {
        "model": ErrorPublic,
        "description": "Database unavailable or its pool exhausted; retry after `Retry-After` seconds.",
    },
}


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
