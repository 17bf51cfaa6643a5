"""API test fixtures: an app on this test's database, driven in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from parley_api.main import create_app
from tests.support.api import make_settings, running_client


@pytest.fixture
async def api_app(database_url: str) -> FastAPI:
    """A fresh app on this test's migrated database."""
    return create_app(make_settings(database_url))


@pytest.fixture
async def client(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of ``api_app`` with its lifespan running."""
    async with running_client(api_app) as http:
        yield http
