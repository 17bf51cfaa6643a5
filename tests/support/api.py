"""The API app on a test database, driven in-process: settings, a running client, a login probe.

Used by the API tests and by the operator and Vault tests that check a login through the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from parley_api.main import create_app
from parley_core.settings import ApiSettings, load_settings

ClientFactory = Callable[..., Any]


@asynccontextmanager
async def running_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def make_settings(database_url: str, **overrides: Any) -> ApiSettings:
    """API settings on ``database_url`` with a small pool."""
    return load_settings(
        ApiSettings, database_url=database_url, db_pool_size=2, db_max_overflow=2, **overrides
    )


StatsLogin = Callable[[str, str], Awaitable[int]]


@asynccontextmanager
async def stats_login(database_url: str, **overrides: Any) -> AsyncIterator[StatsLogin]:
    """A running API on ``database_url`` (no rate limits, fast bcrypt); the callable sends Basic credentials
    to GET /api/v1/stats?period=day and returns the status code: does this login work right now?"""
    settings = {
        "rate_limit_enabled": False,
        "auth_failure_limit_per_username": "1000/minute",
        "auth_failure_limit_per_address": "1000/minute",
        "bcrypt_rounds": 4,
        **overrides,
    }
    async with running_client(create_app(make_settings(database_url, **settings))) as client:

        async def status(username: str, password: str) -> int:
            response = await client.get("/api/v1/stats", params={"period": "day"}, auth=(username, password))
            return response.status_code

        yield status
