"""Alembic migrations on real PostgreSQL: reversible, and identical to the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_core.metadata import metadata
from parley_testing.waiting import wait_for
from tests.support.postgres import DedicatedPostgres

ROOT = Path(__file__).resolve().parents[2]

TABLES = {
    "users",
    "messages",
    "user_settings",
    "api_users",
    "alembic_version",
    "stats_buckets",
    "stats_user_buckets",
    "stats_bucket_gaps",
    "stats_model_buckets",
    "stats_signups",
    "stats_windows",
    "stats_window_totals",
    "stats_window_actives",
    "stats_retention",
    "stats_latency_bins",
    "bot_instances",
    "user_budgets",
    "history_summaries",
    "usage_counters",
    "bot_inbox",
    "bot_outbox",
    "telegram_updates",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    engine = create_async_engine(empty_database_url)
    try:
        assert await schema.current_revision(engine) is None
        await schema.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
        assert await schema.is_at_head(engine)

        await schema.downgrade(engine, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
        assert await schema.current_revision(engine) is None

        await schema.upgrade(engine)
        assert await schema.current_revision(engine) == schema.head_revision()
    finally:
        await engine.dispose()


async def test_autogenerate_finds_no_difference(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_history_index_is_partial(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            definition = await conn.scalar(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_user_id_created_at_live'"
                )
            )
    finally:
        await engine.dispose()
    assert definition is not None
    assert "(user_id, created_at DESC)" in definition
    assert "WHERE (deleted_at IS NULL)" in definition


def _alembic_upgrade(database_url: str, wait_seconds: float, log: Path) -> subprocess.Popen[bytes]:
    """`alembic upgrade head` as the chart's migration Job runs it, its output in ``log``."""
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "MIGRATIONS_WAIT_SECONDS": str(wait_seconds),
        "LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_the_migration_waits_for_a_database_that_is_still_starting(
    dedicated_postgres: DedicatedPostgres, tmp_path: Path
) -> None:
    dedicated_postgres.server.create_database("fresh")
    url = dedicated_postgres.server.url("fresh")
    dedicated_postgres.stop()
    log = tmp_path / "migration.log"
    migration = _alembic_upgrade(url, wait_seconds=120, log=log)
    try:
        wait_for(lambda: "migrations_waiting_for_database" in log.read_text(), what="the migration to wait")
        assert migration.poll() is None, log.read_text()
        dedicated_postgres.start()
        assert migration.wait(timeout=60) == 0, log.read_text()
    finally:
        migration.kill()
    engine = create_async_engine(url)
    try:
        assert await schema.is_at_head(engine)
    finally:
        await engine.dispose()


def test_the_migration_gives_up_at_its_deadline(
    dedicated_postgres: DedicatedPostgres, tmp_path: Path
) -> None:
    dedicated_postgres.stop()
    log = tmp_path / "migration.log"
    migration = _alembic_upgrade(dedicated_postgres.url, wait_seconds=0, log=log)
    assert migration.wait(timeout=60) != 0
    assert "ConnectionRefusedError" in log.read_text()


def test_the_migration_does_not_wait_for_a_database_that_does_not_exist(
    dedicated_postgres: DedicatedPostgres, tmp_path: Path
) -> None:
    log = tmp_path / "migration.log"
    migration = _alembic_upgrade(dedicated_postgres.server.url("missing"), wait_seconds=120, log=log)
    assert migration.wait(timeout=60) != 0
    output = log.read_text()
    assert "InvalidCatalogNameError" in output
    assert "migrations_waiting_for_database" not in output
