"""The async database engine, pool statistics and the pool-utilisation warning.

Keep transactions short: never hold a session open across an LLM call or other slow I/O, or the
pool empties under load and every request stalls.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

from parley_core.logging import get_logger
from parley_core.settings import ParleySettings

log = get_logger(__name__)

# The max_overflow each engine's pool was built with (SQLAlchemy keeps it only in a private attribute
# of the pool; keyed by engine, because dispose() replaces the pool with a new one of the same shape).
_MAX_OVERFLOW: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one process's connection pool."""

    size: int
    max_overflow: int
    capacity: int
    checked_out: int
    idle: int
    open: int
    overflow: int
    available: int
    utilization: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for /health."""
        return asdict(self)


def pool_stats(engine: AsyncEngine) -> PoolStats:
    """Read the pool's counters; capacity is pool_size + max_overflow (known for pools built by
    :func:`create_engine`; 0 for others)."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return PoolStats(0, 0, 0, 0, 0, 0, 0, 0, 0.0)
    size = pool.size()
    max_overflow = _MAX_OVERFLOW.get(engine.sync_engine, 0)
    checked_out = pool.checkedout()
    idle = pool.checkedin()
    capacity = size + max(max_overflow, 0)
    return PoolStats(
        size=size,
        max_overflow=max_overflow,
        capacity=capacity,
        checked_out=checked_out,
        idle=idle,
        open=checked_out + idle,
        overflow=max(pool.overflow(), 0),
        available=max(capacity - checked_out, 0),
        utilization=round(checked_out / capacity, 4) if capacity else 0.0,
    )


class PoolUtilizationWarning:
    """Logs one WARNING each time pool use crosses the threshold upwards, not one per checkout."""

    def __init__(self, engine: AsyncEngine, threshold: float) -> None:
        self.engine = engine
        self.threshold = threshold
        self.warned = False
        pool = engine.sync_engine.pool
        event.listen(pool, "checkout", self._on_checkout)
        event.listen(pool, "checkin", self._on_checkin)

    def _on_checkout(self, _dbapi: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        stats = pool_stats(self.engine)
        if stats.utilization > self.threshold and not self.warned:
            self.warned = True
            log.warning(
                "db_pool_high_utilization",
                utilization=f"{stats.utilization:.0%}",
                checked_out=stats.checked_out,
                capacity=stats.capacity,
            )

    def _on_checkin(self, _dbapi: Any, _record: ConnectionPoolEntry) -> None:
        if self.warned and pool_stats(self.engine).utilization <= self.threshold:
            self.warned = False


def create_engine(settings: ParleySettings, *, application_name: str = "parley") -> AsyncEngine:
    """An asyncpg engine with the pool configured from settings and the utilisation warning attached."""
    server_settings = {"application_name": application_name}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    engine = create_async_engine(
        settings.sqlalchemy_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        echo=settings.db_echo,
        hide_parameters=True,  # parameters may hold message text or password hashes
        connect_args={"timeout": settings.db_connect_timeout, "server_settings": server_settings},
    )
    _MAX_OVERFLOW[engine.sync_engine] = settings.db_max_overflow
    PoolUtilizationWarning(engine, settings.db_pool_warn_utilization)
    return engine


@dataclass(frozen=True)
class DatabaseCheck:
    """Result of a liveness query: whether the database answered and how fast."""

    ok: bool
    latency_ms: float
    error: str | None = None


async def check_database(engine: AsyncEngine, *, timeout: float) -> DatabaseCheck:
    """Run SELECT 1 within ``timeout`` seconds; failures are described by type, never with the URL."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return DatabaseCheck(False, _ms_since(started), "timeout")
    except Exception as exc:  # any driver or pool error means "not reachable"
        return DatabaseCheck(False, _ms_since(started), type(exc).__name__)
    return DatabaseCheck(True, _ms_since(started))


# SQLSTATE classes that mean "the server cannot serve this now", not "this statement is wrong":
# connection exceptions, insufficient resources (too many connections), operator intervention
# (shutdown, restart, a cancelled or timed-out statement), system errors.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached or could not serve right now.

    Such a failure is worth retrying later (the same statement will work once the server is back);
    anything else (a constraint, bad data, a bug) is not. Looks through SQLAlchemy's and asyncpg's
    wrappers: a refused connection arrives as a bare OSError, a server shutdown as asyncpg's
    AdminShutdownError inside a DBAPIError.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | exc.TimeoutError):
            return True  # refused or timed-out connection, or no connection free in the pool
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
        if isinstance(current, asyncpg.exceptions.InterfaceError):
            return True  # asyncpg: the connection closed under us
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
