"""An API app on a test database, driven in-process from a chosen client address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from parley_api.main import create_app
from tests.support.api import make_settings
from tests.utils.api_users import TEST_BCRYPT_ROUNDS


def security_app(database_url: str, **overrides: Any) -> FastAPI:
    """An app with test-speed bcrypt; ``overrides`` are API settings."""
    return create_app(make_settings(database_url, **{"bcrypt_rounds": TEST_BCRYPT_ROUNDS, **overrides}))


@asynccontextmanager
async def lifespan_of(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (engine in, pool out) around the block."""
    async with app.router.lifespan_context(app):
        yield app


def client_from(
    app: FastAPI, address: str = "127.0.0.1", *, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """A client whose requests reach ``app`` from the TCP peer ``address`` (the app's lifespan must run)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)
