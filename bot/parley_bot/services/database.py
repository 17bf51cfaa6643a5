"""Running the bot's statements: one round trip each, a reconnect when the server dropped the
connection, and — for what must not be lost — patience until the database is back.

The bot's pool does not pre-ping (it would triple the round trips of a message), so a connection
the server closed while idle (a restart) is only noticed when used: SQLAlchemy then invalidates
the pool and :func:`execute` retries once on a fresh connection. :func:`persist` goes further for
statements whose loss would lose a user's message or send an answer twice (storing an answer,
counting what Telegram accepted): it retries with backoff for as long as the database is
unavailable, and only a shutdown (cancellation) or a real error ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_bot.lifecycle import Lifecycle
from parley_core.db import is_database_unavailable
from parley_core.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
Statement = Callable[[AsyncConnection], Awaitable[T]]

PERSIST_BACKOFF_START = 0.25
PERSIST_BACKOFF_MAX = 5.0


async def execute(engine: AsyncEngine, statement: Statement[T]) -> T:
    """Run one statement on a pooled AUTOCOMMIT connection (no BEGIN/COMMIT round trips)."""
    for attempt in (1, 2):
        try:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await statement(conn)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("db_connection_lost", retrying=True)
    raise AssertionError("unreachable")


async def persist(engine: AsyncEngine, statement: Statement[T], *, what: str, lifecycle: Lifecycle) -> T:
    """Run ``statement``, retrying while the database is unavailable (logged once per outage)."""
    delay = PERSIST_BACKOFF_START
    waited = False
    while True:
        try:
            result = await execute(engine, statement)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            lifecycle.database_failed()
            if not waited:
                log.warning("db_unavailable_waiting", what=what, error=type(exc).__name__)
                waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, PERSIST_BACKOFF_MAX)
            continue
        if waited:
            log.info("db_available_again", what=what)
        lifecycle.database_ok()
        return result
