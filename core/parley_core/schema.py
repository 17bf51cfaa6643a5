"""Where the Alembic migrations live, which revision is head, and whether a database is at it.

Migrations are the only way the schema changes; services only *check* the revision (readiness),
`make migrate` and the chart's hook Job apply it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR_ENV = "PARLEY_MIGRATIONS_DIR"

# Where a database's schema stands against this build's scripts. `ahead` (migrated by a newer build)
# is servable: migrations are additive, so a rolling upgrade's old pods keep working on them.
SchemaState = Literal["at_head", "ahead", "behind", "missing"]
SERVABLE_STATES: frozenset[SchemaState] = frozenset({"at_head", "ahead"})


def migrations_dir() -> Path:
    """PARLEY_MIGRATIONS_DIR, else the repository's migrations/, else ./migrations (images)."""
    candidates = []
    if configured := os.environ.get(MIGRATIONS_DIR_ENV):
        candidates.append(Path(configured))
    candidates += [Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations"]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"Alembic migrations not found (looked in {', '.join(map(str, candidates))}); "
        f"set {MIGRATIONS_DIR_ENV}"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config without alembic.ini; ``connection`` makes env.py reuse it."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision of the migration scripts (cached: scripts do not change at run time)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision this build's scripts know; a database at another one was migrated by a newer build."""
    return frozenset(rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions())


async def revision_of(conn: AsyncConnection) -> str | None:
    """The revision in alembic_version over an open connection (None when never migrated)."""
    if not await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
        return None
    revision: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))
    return revision


async def state_of(conn: AsyncConnection) -> SchemaState:
    """Where the schema behind an open connection stands against this build's migrations."""
    current = await revision_of(conn)
    if current is None:
        return "missing"
    if current == head_revision():
        return "at_head"
    return "behind" if current in known_revisions() else "ahead"


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database's alembic_version table (None when unmigrated)."""
    async with engine.connect() as conn:
        return await revision_of(conn)


async def is_at_head(engine: AsyncEngine) -> bool:
    """Whether the database schema is exactly at the scripts' head revision."""
    return await current_revision(engine) == head_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` over the engine's connection, in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Revert migrations down to ``revision``."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(alembic_config(sync_conn), revision))
