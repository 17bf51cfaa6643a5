"""Engine factory, pool statistics and the utilisation warning, on real PostgreSQL."""

from __future__ import annotations

import io
import json

from sqlalchemy import text

from parley_core.db import (
    check_database,
    create_engine,
    pool_stats,
)
from parley_core.settings import ParleySettings, load_settings


def _settings(database_url: str, **overrides: object) -> ParleySettings:
    return load_settings(ParleySettings, database_url=database_url, **overrides)


async def test_engine_uses_configured_pool(database_url: str) -> None:
    engine = create_engine(_settings(database_url, db_pool_size=3, db_max_overflow=2))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT current_setting('application_name')")) == "parley"
            stats = pool_stats(engine)
        assert (stats.size, stats.max_overflow, stats.capacity) == (3, 2, 5)
        assert (stats.checked_out, stats.available) == (1, 4)
        assert pool_stats(engine).checked_out == 0
    finally:
        await engine.dispose()


async def test_statement_timeout_is_applied(database_url: str) -> None:
    engine = create_engine(_settings(database_url, db_statement_timeout_ms=1234))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW statement_timeout")) == "1234ms"
    finally:
        await engine.dispose()


async def test_high_utilisation_warns_once_per_crossing(database_url: str, log_output: io.StringIO) -> None:
    engine = create_engine(_settings(database_url, db_pool_size=4, db_max_overflow=1))
    try:
        conns = [await engine.connect() for _ in range(5)]  # 5 of 5 = 100 %
        for conn in conns:
            await conn.close()
        conns = [await engine.connect() for _ in range(5)]  # crossing again after dropping
        for conn in conns:
            await conn.close()
    finally:
        await engine.dispose()

    warnings = [
        json.loads(line) for line in log_output.getvalue().splitlines() if "db_pool_high_utilization" in line
    ]
    assert len(warnings) == 2
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["capacity"] == 5


async def test_check_database_up_and_down(database_url: str) -> None:
    engine = create_engine(_settings(database_url))
    down = create_engine(_settings("postgresql://nobody:secret-pw@127.0.0.1:9/none", db_connect_timeout=1))
    try:
        up = await check_database(engine, timeout=2)
        failed = await check_database(down, timeout=2)
    finally:
        await engine.dispose()
        await down.dispose()

    assert up.ok
    assert up.error is None
    assert up.latency_ms >= 0
    assert not failed.ok
    assert failed.error is not None
    assert "secret-pw" not in failed.error
