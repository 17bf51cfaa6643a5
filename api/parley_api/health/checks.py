"""Where the database's schema stands against the migrations this build ships."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.health.schemas import SchemaState
from parley_core.schema import state_of


async def check_schema(engine: AsyncEngine, timeout: float) -> tuple[bool, SchemaState]:
    """Whether the database answered, and its schema's state (`unknown` when it did not)."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            return True, await state_of(conn)
    except Exception:  # any failure to reach the database is "down", never a 500
        return False, "unknown"
