"""Real PostgreSQL for tests: one throwaway server per session, one fresh database per test.

The server runs from the machine's binaries in a temporary directory (as the `postgres` user
when the tests run as root). Migrations are applied once to a template database; each test
gets a copy of it (CREATE DATABASE ... TEMPLATE takes a few tens of milliseconds), so tests can
commit freely and still never see each other's rows.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_core import schema
from tools.localpg import LocalPostgres, PostgresNotFoundError, find_bindir, throwaway_postgres

TEMPLATE_DB = "parley_template"
_counter = itertools.count()


def _unavailable(reason: str) -> None:
    """Skip on a laptop without PostgreSQL; fail under CI, where a skip would hide a gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL 15 server on a free loopback port, stopped and deleted after the session."""
    settings = {  # durability buys nothing in a throwaway cluster; speed does
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    try:
        find_bindir()
    except PostgresNotFoundError as exc:
        _unavailable(str(exc))
    with throwaway_postgres("parley-pg-", settings) as server:
        yield server


async def _migrate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await schema.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(postgres_server: LocalPostgres) -> str:
    """Name of a database at the migrations' head, copied for every test."""
    postgres_server.create_database(TEMPLATE_DB)
    asyncio.run(_migrate(postgres_server.url(TEMPLATE_DB)))
    return TEMPLATE_DB


def _fresh_database(server: LocalPostgres, template: str | None) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_counter)}"
    server.create_database(name, template=template)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def database_url(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """URL of a database of this test's own, at the head schema."""
    yield from _fresh_database(postgres_server, migrated_template)


@pytest.fixture
def empty_database_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """URL of an empty database (no migrations applied), for migration tests."""
    yield from _fresh_database(postgres_server, None)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on this test's database, disposed afterwards."""
    engine = create_async_engine(database_url, pool_size=5, max_overflow=5)
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass
class DedicatedPostgres:
    """A PostgreSQL server of one test's own, migrated, that the test may stop and start."""

    server: LocalPostgres
    url: str

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are terminated)."""
        self.server.stop(mode="fast")

    def start(self) -> None:
        """Start it again, on the same port and data."""
        self.server.start()


@pytest.fixture
def dedicated_postgres() -> Iterator[DedicatedPostgres]:
    """Its own server, for tests that take the database away (the shared one serves other tests)."""
    try:
        find_bindir()
    except PostgresNotFoundError as exc:
        _unavailable(str(exc))
    with throwaway_postgres("parley-pg-own-", {"fsync": "off", "synchronous_commit": "off"}) as server:
        server.create_database("parley")
        url = server.url("parley")
        asyncio.run(_migrate(url))
        yield DedicatedPostgres(server, url)
