"""Settings of the schema migration (`alembic upgrade head`, the chart's migration Job)."""

from __future__ import annotations

from pydantic import Field

from parley_core.settings.base import ParleySettings


class MigrationSettings(ParleySettings):
    """The migration: Parley's database settings plus how long to wait for the database."""

    migrations_wait_seconds: float = Field(
        default=180.0,
        ge=0,
        description="How long the migration waits for PostgreSQL to accept connections (a database "
        "that is still starting, or not reachable yet) before it fails; 0 tries once. A wrong "
        "password or a missing database fails at once.",
    )
