"""Alembic environment: async (asyncpg) on parley_core's metadata.

Given a connection in ``config.attributes["connection"]`` (tests, parley_core.schema) it uses it;
otherwise it connects with the URL from Parley's settings (DATABASE_URL or DB_*), waiting up to
MIGRATIONS_WAIT_SECONDS for a database that is still starting: the chart's first install starts the
migration together with its bundled PostgreSQL, and a migration that failed until then would leave
restarts and a growing back-off behind instead of a migrated schema.
"""

from __future__ import annotations

import asyncio
import time

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from parley_core.db import is_database_unavailable
from parley_core.logging import get_logger
from parley_core.metadata import metadata
from parley_core.settings import MigrationSettings, load_settings

log = get_logger("parley.migrations")

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=False,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _connect(engine: AsyncEngine, wait_seconds: float) -> AsyncConnection:
    """Connect, retrying while the database is unavailable, until ``wait_seconds`` have passed."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        try:
            return await engine.connect()
        except Exception as error:
            remaining = deadline - time.monotonic()
            if not is_database_unavailable(error) or remaining <= 0:
                raise
            log.info("migrations_waiting_for_database", error=type(error).__name__, retry_in_s=delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


async def _run_online() -> None:
    settings = load_settings(MigrationSettings)
    engine = create_async_engine(
        settings.sqlalchemy_url(),
        poolclass=pool.NullPool,
        connect_args={"timeout": settings.db_connect_timeout},
    )
    try:
        connection = await _connect(engine, settings.migrations_wait_seconds)
        try:
            await connection.run_sync(_run_sync)
            await connection.commit()
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    settings = load_settings(MigrationSettings)
    context.configure(
        url=settings.sqlalchemy_url().render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (given := config.attributes.get("connection")) is not None:
    _run_sync(given)
else:
    asyncio.run(_run_online())
