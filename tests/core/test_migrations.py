"""Alembic migrations on real PostgreSQL: reversible, and identical to the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_core.metadata import metadata

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
    "bot_instances",
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
