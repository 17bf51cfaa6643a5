"""`make bench-api`: the stats API at 1M and 10M messages, against direct aggregates.

The direct aggregates over `messages` are what the predecessor computed on every request
(docs/decisions.md); they are the baseline Parley's rollups are compared with.

Measured in one run on one machine (comparisons are side by side, never against old numbers):
- served latency per period and window (rolling, calendar) (HTTP over loopback to a real
  `python -m parley_api`, warm, authenticated, rate limit off) and its growth from 1M to 10M;
- the baseline: the predecessor's direct aggregates over `messages`, per period (rolling windows);
- database time a dashboard costs when it polls all three periods every 10 s for a minute —
  ours (every poll hits the rollups) against the baseline behind a 60 s result cache;
- authenticated throughput; what the rollup triggers add to storing a message; how long a new
  message takes to show in the stats; what a cached Basic-auth check adds;
- `/reset` of a user with 100k messages, and what another writer and the stats see meanwhile;
- served latency again on a second, differently skewed 10M data set (SKEWED below).

Data is generated once per size into a cluster under ~/.cache/parley/bench and reused while
fresh (the `day` window needs recent data). Results: tools/bench/results/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_api.auth.basic import Authenticator
from parley_api.auth.header import BasicCredentials
from parley_core import passwords
from parley_core.repositories.messages import soft_delete_history
from parley_core.settings import ApiSettings, load_settings
from parley_core.stats.periods import Period, WindowMode, window_for
from parley_core.stats.queries import StatsQuery
from parley_testing import stats_reference as baseline
from tools.bench.report import Goal, percentiles, write
from tools.localpg import LocalPostgres, free_port
from tools.run import migrate
from tools.seed_demo import DemoSpec, load

# Outside /root: when we run as root, PostgreSQL runs as `postgres` and must reach its directory.
CACHE = Path(os.environ.get("PARLEY_BENCH_DIR", "/var/tmp/parley-bench"))
PASSWORD = "bench-password-long-enough"
FRESH_FOR = timedelta(hours=6)
RESET_BATCH = 100  # messages per transaction while the heavy user's history is stored
ROOT = Path(__file__).resolve().parents[2]


def size_label(size: int) -> str:
    """10000000 -> "10M", 300000 -> "300k"."""
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"


def say(message: str) -> None:
    """Progress for the person waiting."""
    print(f"[bench-api] {message}", flush=True)


# The second data set, skewed differently from the demo's: 10M messages among half as many users
# with a heavier tail (Pareto shape 0.9), 15 % of users resetting, a tenth of the dialogs in a burst
# over the last 6 hours, and 0.5 % stamped up to 10 minutes ahead (a writer whose clock runs ahead).
SKEWED = DemoSpec(
    users=50_000, messages=10_000_000, days=90, seed=7, reset_share=0.15, pareto_shape=0.9,
    burst_share=0.1, ahead_share=0.005,
)  # fmt: skip


async def ensure_data(pg: LocalPostgres, spec: DemoSpec, label: str = "") -> str:
    """A migrated database holding ``spec``'s demo data, generated within FRESH_FOR."""
    name = f"bench_{spec.messages}{label}"
    if not pg.database_exists(name):
        pg.create_database(name)
    url = pg.url(name)
    await migrate(url)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (spec text, loaded_at timestamptz)")
        row = await conn.fetchrow("SELECT spec, loaded_at FROM bench_meta")
    finally:
        await conn.close()
    if row is None or row["spec"] != repr(spec) or datetime.now(UTC) - row["loaded_at"] > FRESH_FOR:
        say(f"generating {spec.messages:,} messages for {spec.users:,} users ...")
        started = time.monotonic()
        await load(dsn, spec, replace=True, progress=sys.stderr.isatty())
        say(f"generated in {time.monotonic() - started:.0f} s")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM bench_meta")
            await conn.execute("INSERT INTO bench_meta VALUES ($1, now())", repr(spec))
            await conn.execute(
                "INSERT INTO api_users (username, password_hash, source) VALUES ('bench', $1, 'registration')"
                " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash",
                passwords.hash_password(PASSWORD, rounds=4),
            )
        finally:
            await conn.close()
    return url


class ApiProcess:
    """A real `python -m parley_api` on a free port, rate limit off."""

    def __init__(self, url: str, **settings: str) -> None:
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "API_PORT": str(self.port), "RATE_LIMIT_ENABLED": "false",
               "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json", "DB_POOL_SIZE": "10", **settings}  # fmt: skip
        self.process = subprocess.Popen([sys.executable, "-m", "parley_api"], env=env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self) -> None:
        """Until /ready answers 200 (or 60 s)."""
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    if (await client.get(f"{self.base}/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the API did not become ready")

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=40)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def served_latency(api: ApiProcess, runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p95/max of GET /api/v1/stats per window mode and period, after a warm-up."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    async with httpx.AsyncClient(base_url=api.base, auth=("bench", PASSWORD), timeout=60) as client:
        for mode in WindowMode:
            for period in Period:
                params = {"period": period.value, "window": mode.value}

                async def get(params: dict[str, str] = params) -> None:
                    response = await client.get("/api/v1/stats", params=params)
                    response.raise_for_status()

                for _ in range(5):
                    await get()
                results.setdefault(mode.value, {})[period.value] = percentiles(
                    [await timed(get) for _ in range(runs)]
                )
    return results


async def baseline_seconds(engine: AsyncEngine, runs: int) -> dict[str, float]:
    """Median seconds of one whole direct-aggregate collection per period."""
    results = {}
    async with engine.connect() as conn:
        for period in Period:
            window = window_for(period, datetime.now(UTC), WindowMode.ROLLING)
            statements: list[StatsQuery[Any]] = [
                baseline.summary_query(window),
                baseline.activity_query(window),
                baseline.recent_dialogs_query(
                    window, limit=15, preview_length=120, dialog_gap=timedelta(minutes=30)
                ),
                baseline.top_users_query(window, limit=10),
                baseline.llm_usage_query(window),
            ]
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                for query in statements:
                    (await conn.execute(query.statement, query.params)).all()
                samples.append(time.perf_counter() - started)
            results[period.value] = round(sorted(samples)[len(samples) // 2], 3)
    return results


async def metric_sum(client: httpx.AsyncClient, name: str) -> float:
    """Sum of all series of ``name`` on /metrics."""
    total = 0.0
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def dashboard_db_seconds(api: ApiProcess, polls: int) -> float:
    """Database seconds for ``polls`` polls of all three periods (the collector's own timings)."""
    async with httpx.AsyncClient(base_url=api.base, auth=("bench", PASSWORD), timeout=60) as client:
        before = await metric_sum(client, "database_query_duration_seconds_sum")
        for _ in range(polls):
            for period in Period:
                (await client.get("/api/v1/stats", params={"period": period.value})).raise_for_status()
        return await metric_sum(client, "database_query_duration_seconds_sum") - before


async def throughput(api: ApiProcess, *, concurrency: int, seconds: float) -> dict[str, float]:
    """Authenticated requests per second over all periods with ``concurrency`` clients."""
    done = errors = 0
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(base_url=api.base, auth=("bench", PASSWORD), timeout=60) as client:
            periods = list(Period)
            while time.monotonic() < deadline:
                response = await client.get("/api/v1/stats", params={"period": periods[done % 3].value})
                done += 1
                errors += response.status_code != 200

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"requests": done, "errors": errors, "seconds": round(elapsed, 2),
            "requests_per_second": round(done / elapsed, 1), "concurrency": concurrency}  # fmt: skip


async def insert_overhead(dsn: str, rows: int) -> dict[str, Any]:
    """Per-message INSERT+COMMIT with the rollup triggers on and off, interleaved in batches."""
    conn = await asyncpg.connect(dsn)
    samples: dict[str, list[float]] = {"with_triggers": [], "without_triggers": []}
    try:
        user_id = await conn.fetchval("SELECT id FROM users ORDER BY id LIMIT 1")
        insert = await conn.prepare(
            "INSERT INTO messages (id, user_id, role, content, content_length, created_at)"
            " VALUES ($1, $2, 'user', 'benchmark message', 17, now())"
        )
        for batch in range(10):
            for mode in (
                ("with_triggers", "without_triggers") if batch % 2 else ("without_triggers", "with_triggers")
            ):
                action = "ENABLE" if mode == "with_triggers" else "DISABLE"
                await conn.execute(f"ALTER TABLE messages {action} TRIGGER stats_messages")
                for _ in range(rows // 10):
                    started = time.perf_counter()
                    async with conn.transaction():
                        await insert.fetch(uuid.uuid4(), user_id)
                    samples[mode].append((time.perf_counter() - started) * 1000)
        await conn.execute("ALTER TABLE messages ENABLE TRIGGER stats_messages")
        await conn.execute("DELETE FROM messages WHERE content = 'benchmark message'")
        await conn.execute("SELECT stats_rebuild()")  # the untracked inserts left the rollups behind
    finally:
        await conn.close()
    on, off = percentiles(samples["with_triggers"]), percentiles(samples["without_triggers"])
    return {"with_triggers_ms": on, "without_triggers_ms": off,
            "added_p50_ms": round(on["p50"] - off["p50"], 3)}  # fmt: skip


async def freshness(api: ApiProcess, dsn: str, attempts: int) -> dict[str, float]:
    """Seconds from a message's commit until GET /api/v1/stats counts it."""
    conn = await asyncpg.connect(dsn)
    delays = []
    try:
        user_id = await conn.fetchval("SELECT id FROM users ORDER BY id DESC LIMIT 1")
        async with httpx.AsyncClient(base_url=api.base, auth=("bench", PASSWORD), timeout=60) as client:
            for _ in range(attempts):

                async def total() -> int:
                    body = (await client.get("/api/v1/stats", params={"period": "day"})).json()
                    return int(body["summary"]["total_messages"])

                before = await total()
                await conn.execute(
                    "INSERT INTO messages (user_id, role, content, content_length)"
                    " VALUES ($1, 'user', 'f', 1)",
                    user_id,
                )
                committed = time.perf_counter()
                while await total() == before and time.perf_counter() - committed < 30:
                    await asyncio.sleep(0.01)
                delays.append(time.perf_counter() - committed)
    finally:
        await conn.close()
    return {
        "max_seconds": round(max(delays), 4),
        "median_seconds": round(sorted(delays)[len(delays) // 2], 4),
    }


async def reset_heavy_user(api: ApiProcess, url: str, messages: int) -> dict[str, Any]:
    """/reset of a user with ``messages`` live messages, while another user writes and the stats poll.

    The heavy user's messages go in through the rollup triggers (as the bot stores them), spread
    over the last 30 days; the reset is the bot's own statement (``soft_delete_history``). Another
    user stores one message per transaction all along, and the stats API is asked for the day.
    """
    engine = create_async_engine(url)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    writer = await asyncpg.connect(dsn)
    heavy, other = 9_000_000_001, 9_000_000_002
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE id IN (:a, :b)"), {"a": heavy, "b": other})
            await conn.execute(text("INSERT INTO users (id) VALUES (:a), (:b)"), {"a": heavy, "b": other})
        # Stored as the bot stores them, a few per transaction: one transaction of 100k trigger runs
        # would update the same rollup rows 100k times, each update walking the versions before it.
        for first in range(1, messages + 1, RESET_BATCH):
            last = min(first + RESET_BATCH - 1, messages)
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO messages (user_id, role, content, content_length, created_at)"
                        " SELECT :u, 'user', 'heavy', 5, now() - (g * interval '30 days') / CAST(:n AS int)"
                        " FROM generate_series(CAST(:first AS int), CAST(:last AS int)) g"
                    ),
                    {"u": heavy, "n": messages, "first": first, "last": last},
                )
        insert = await writer.prepare(
            "INSERT INTO messages (user_id, role, content, content_length) VALUES ($1, 'user', 'other', 5)"
        )
        writes: list[float] = []
        reads: list[float] = []
        done = asyncio.Event()

        async def write_meanwhile() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with writer.transaction():
                    await insert.fetch(other)
                writes.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.005)

        async def read_meanwhile(client: httpx.AsyncClient) -> None:
            while not done.is_set():
                reads.append(await timed(lambda: client.get("/api/v1/stats", params={"period": "day"})))
                await asyncio.sleep(0.05)

        async with httpx.AsyncClient(base_url=api.base, auth=("bench", PASSWORD), timeout=120) as client:
            background = [asyncio.create_task(write_meanwhile()), asyncio.create_task(read_meanwhile(client))]
            await asyncio.sleep(1)
            started = time.perf_counter()
            async with engine.begin() as conn:
                removed = await soft_delete_history(conn, user_id=heavy)
            seconds = time.perf_counter() - started
            await asyncio.sleep(1)
            done.set()
            await asyncio.gather(*background)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE id IN (:a, :b)"), {"a": heavy, "b": other})
    finally:
        await writer.close()
        await engine.dispose()
    return {
        "messages": removed,
        "seconds": round(seconds, 3),
        "other_writer_ms": {**percentiles(writes), "max": round(max(writes), 2), "count": len(writes)},
        "stats_day_ms": {**percentiles(reads), "max": round(max(reads), 2), "count": len(reads)},
    }


async def cached_auth_ms(url: str, runs: int) -> dict[str, float]:
    """What a cached Basic-auth check costs, in process (the row re-check included)."""
    settings = load_settings(ApiSettings, database_url=url, rate_limit_enabled=False)
    authenticator = Authenticator.from_settings(settings)
    engine = create_async_engine(url)
    credentials = BasicCredentials(username="bench", password=PASSWORD)
    try:
        await authenticator.authenticate(engine, credentials, address="127.0.0.1")  # fills the cache
        samples = [
            await timed(lambda: authenticator.authenticate(engine, credentials, address="127.0.0.1"))
            for _ in range(runs)
        ]
        started = time.perf_counter()
        await passwords.verify_password_async(PASSWORD, passwords.hash_password(PASSWORD))
        bcrypt_ms = (time.perf_counter() - started) * 1000
    finally:
        await engine.dispose()
    return {**percentiles(samples), "uncached_bcrypt_cost12_ms": round(bcrypt_ms, 1)}


async def run(args: argparse.Namespace) -> int:
    """Everything, in one run; writes tools/bench/results/api.json."""
    base = CACHE / "pg"
    base.mkdir(parents=True, exist_ok=True)
    for path in (CACHE, base):
        path.chmod(0o755)
    pg = LocalPostgres(data_dir=base / "data", run_dir=base / "run", port=free_port(), settings={
        "shared_buffers": "2GB", "work_mem": "64MB", "maintenance_work_mem": "1GB", "max_wal_size": "8GB",
        "fsync": "off", "synchronous_commit": "off", "max_connections": "100"})  # fmt: skip
    pg.start()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"served_ms": {}, "baseline_seconds": {}}
    try:
        postgres_version = pg.psql("SHOW server_version").split()[0]
        for size in sizes:
            spec = DemoSpec(users=max(size // 100, 100), messages=size, days=90)
            url = await ensure_data(pg, spec)
            label = size_label(size)
            api = ApiProcess(url, STATS_CACHE_SECONDS="0")  # every request computes: that is measured
            try:
                await api.wait_ready()
                say(f"{label}: served latency ({args.runs} runs per period)")
                results["served_ms"][label] = await served_latency(api, args.runs)
                say(f"{label}: baseline (direct aggregates)")
                engine = create_async_engine(url)
                try:
                    runs = args.baseline_runs if size < 5_000_000 else 1
                    results["baseline_seconds"][label] = await baseline_seconds(engine, runs)
                finally:
                    await engine.dispose()
                if size == sizes[-1]:
                    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
                    say(f"{label}: dashboard polling, throughput, insert overhead, freshness, auth")
                    ours = await dashboard_db_seconds(api, polls=6)
                    results["dashboard_minute_db_seconds"] = {
                        "parley": round(ours, 3),
                        "baseline_60s_cache": round(sum(results["baseline_seconds"][label].values()), 3),
                    }
                    results["throughput"] = await throughput(api, concurrency=8, seconds=args.seconds)
                    results["insert"] = await insert_overhead(dsn, args.inserts)
                    results["freshness"] = await freshness(api, dsn, attempts=5)
                    results["cached_auth_ms"] = await cached_auth_ms(url, runs=200)
                    say(f"{label}: /reset of a user with {args.reset_messages} messages")
                    results["reset"] = await reset_heavy_user(api, url, args.reset_messages)
            finally:
                api.stop()
        if args.skewed_runs:
            url = await ensure_data(pg, SKEWED, label="_skewed")
            api = ApiProcess(url, STATS_CACHE_SECONDS="0")
            try:
                await api.wait_ready()
                say(f"skewed set: served latency ({args.skewed_runs} runs per period)")
                results["served_ms_skewed"] = await served_latency(api, args.skewed_runs)
            finally:
                api.stop()
    finally:
        pg.stop()

    big, small = size_label(sizes[-1]), size_label(sizes[0])
    served = results["served_ms"]
    goals = [
        Goal(f"stats_p95_ms_{m.value}_{p.value}_{big}", served[big][m.value][p.value]["p95"], "<=", 50)
        for m in WindowMode
        for p in Period
    ]
    goals += [
        Goal(
            f"stats_p95_ms_{m.value}_{p.value}_skewed",
            results["served_ms_skewed"][m.value][p.value]["p95"],
            "<=",
            50,
        )
        for m in WindowMode
        for p in Period
        if args.skewed_runs
    ]
    if len(sizes) > 1:
        growth = max(
            served[big][m.value][p.value]["p50"] / served[small][m.value][p.value]["p50"]
            for m in WindowMode
            for p in Period
        )
        goals.append(Goal(f"p50_growth_{small}_to_{big}", growth, "<=", 2))
    goals += [
        Goal(f"dashboard_minute_db_seconds_{big}", results["dashboard_minute_db_seconds"]["parley"], "<=", 2),
        Goal("insert_added_ms_p50", results["insert"]["added_p50_ms"], "<=", 1),
        Goal("new_message_visible_seconds_max", results["freshness"]["max_seconds"], "<=", 15),
        Goal("cached_auth_ms_p50", results["cached_auth_ms"]["p50"], "<=", 1),
        Goal("reset_100k_seconds", results["reset"]["seconds"], "<=", 10),
        Goal("other_writer_ms_max_during_reset", results["reset"]["other_writer_ms"]["max"], "<=", 250),
        Goal("stats_day_ms_max_during_reset", results["reset"]["stats_day_ms"]["max"], "<=", 250),
    ]
    for period in Period:
        rolling = served[big][WindowMode.ROLLING.value][period.value]["p50"]
        speedup = results["baseline_seconds"][big][period.value] * 1000 / rolling
        results.setdefault("speedup_vs_baseline", {})[period.value] = round(speedup, 1)
    params = {
        "sizes": sizes,
        "users_per_size": [max(s // 100, 100) for s in sizes],
        "days": 90,
        "runs_per_period": args.runs,
        "windows": [m.value for m in WindowMode],
        "baseline_runs_below_5M": args.baseline_runs,
        "baseline_runs_from_5M": 1,
        "throughput_concurrency": 8,
        "throughput_seconds": args.seconds,
        "insert_rows": args.inserts,
        "reset_messages": args.reset_messages,
        "skewed_data": repr(SKEWED) if args.skewed_runs else None,
        "skewed_runs_per_period": args.skewed_runs,
        "dashboard_polls": 6,
        "warmup_requests": 5,
        "note": "bench cluster runs with fsync off; the client runs on the same 2 cores",
    }
    path = write("api", params=params, results=results, goals=goals, postgres=postgres_version)
    say(f"wrote {path}")
    for goal in goals:
        say(f"goal {goal.verdict()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated message counts")
    parser.add_argument("--runs", type=int, default=100, help="requests per period per size")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput duration")
    parser.add_argument("--inserts", type=int, default=2000)
    parser.add_argument("--reset-messages", type=int, default=100_000, help="live messages /reset removes")
    parser.add_argument(
        "--skewed-runs", type=int, default=50, help="requests per period on the skewed set (0: skip)"
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
