"""Where the database's schema stands against the migrations this build ships."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.health.schemas import SchemaState
from parley_core.schema import head_revision, known_revisions, revision_of


async def check_schema(engine: AsyncEngine, timeout: float) -> tuple[bool, SchemaState]:
    """Whether the database answered, and its schema's state (`unknown` when it did not)."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            current = await revision_of(conn)
    except Exception:  # any failure to reach the database is "down", never a 500
        return False, "unknown"
    if current is None:
        return True, "missing"
    if current == head_revision():
        return True, "at_head"
    return True, "behind" if current in known_revisions() else "ahead"
