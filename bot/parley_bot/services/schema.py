"""Waiting at start until the database schema is migrated.

On a fresh install the chart starts the bot and the migrations Job together; a bot that took updates
before the tables exist would fail every statement. It serves its probes meanwhile (/ready says what
it waits for), checks the revision every few seconds, and starts taking updates once the schema is
at this build's head or ahead of it (a newer build migrated; migrations are additive).
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.lifecycle import Lifecycle
from parley_core.db import is_database_unavailable
from parley_core.logging import get_logger
from parley_core.schema import SERVABLE_STATES, SchemaState, state_of

log = get_logger(__name__)

SCHEMA_CHECK_SECONDS = 2.0


async def _schema_state(engine: AsyncEngine) -> SchemaState | None:
    """The schema's state, or None when the database cannot be reached."""
    try:
        async with engine.connect() as conn:
            return await state_of(conn)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return None


async def wait_for_schema(
    engine: AsyncEngine, lifecycle: Lifecycle, *, interval: float = SCHEMA_CHECK_SECONDS
) -> bool:
    """Return True once the schema is servable, False when the process is asked to stop first."""
    reported: SchemaState | None = None
    while not lifecycle.draining:
        state = await _schema_state(engine)
        if state in SERVABLE_STATES:
            if reported is not None:
                log.info("schema_ready", schema=state)
            return True
        lifecycle.starting = (
            "database unreachable"
            if state is None
            else f"database schema is {state}: waiting for the migrations"
        )
        if state is not None and state != reported:
            log.warning("waiting_for_migrations", schema=state)
            reported = state
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lifecycle.stop_requested.wait(), interval)
    return False
