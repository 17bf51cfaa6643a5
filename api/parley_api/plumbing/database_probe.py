"""database_up: whether this API process reaches PostgreSQL, checked in the background.

The database-down alert reads it from every API pod, so an outage of a managed database (which
has no exporter in the cluster) pages too. A background loop runs the check rather than the
scrape: a scrape must not hang on a hanging database, and the result must not depend on how
often Prometheus asks.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.db import check_database

PROBE_INTERVAL_SECONDS = 15.0


async def probe_database_forever(
    engine: AsyncEngine, gauge: Gauge, *, timeout: float, interval: float = PROBE_INTERVAL_SECONDS
) -> None:
    """SELECT 1 every ``interval`` s; ``gauge`` is 1 while it answers within ``timeout``, else 0."""
    while True:
        check = await check_database(engine, timeout=timeout)
        gauge.set(1 if check.ok else 0)
        await asyncio.sleep(interval)
