"""`make bench-bot`: the bot's whole pipeline, measured against the local Telegram and LLM doubles.

Everything runs on this machine over loopback: a throwaway PostgreSQL (tools.localpg), the Telegram
Bot API and OpenAI-compatible doubles (parley_testing.doubles) in this process, and the bot as the real
`python -m parley_bot` process, polling. Simulated users each send a message, wait for the answer,
and send the next (closed loop). Each user sends its first message at a random moment within one
LLM-latency period: independent users are not synchronized, and starting them all in the same
millisecond would measure a burst of N simultaneous answers the harness created, not the bot.

- throughput (answered messages/s) and added latency — time from the update being available to
  getUpdates until the answer reaches sendMessage, minus the scripted LLM latency — at 1, 50 and
  500 concurrent users with LLM latency 0 s and 1 s;
- peak RSS of the bot process (VmHWM), which includes 500 conversations in flight at 1 s latency;
- DB round trips per message: a separate in-process run; PostgreSQL counts the statements it ran
  (pg_stat_statements, BEGIN/COMMIT included) and the client counts pool pre-ping pings.

Budgets are on (every limit set, none reached). Outgoing pacing (TELEGRAM_GLOBAL_PER_SECOND etc.) and
the per-user rate limit are off: they exist to
stay inside Telegram's limits, and with them on the bot would measure Telegram's 30 messages/s, not
its own capacity. Streaming is off (plain request/answer). Results: tools/bench/results/bot.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from parley_bot.__main__ import run
from parley_bot.lifecycle import Lifecycle
from parley_core.logging import configure_logging
from parley_core.settings import BotSettings, load_settings
from parley_testing.bot_process import bot_environment
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tools.bench.report import Goal, percentiles, write
from tools.localpg import LocalPostgres, free_port, throwaway_postgres
from tools.run import migrate

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS: list[tuple[float, int, int]] = [  # (LLM latency s, concurrent users, messages per run)
    (0.0, 1, 100),
    (0.0, 50, 500),
    (0.0, 500, 2000),
    (1.0, 1, 10),
    (1.0, 50, 400),
    (1.0, 500, 2000),
]


_update_ids = itertools.count(1_000, 10_000_000)


def doubles() -> tuple[TelegramDouble, LLMDouble]:
    """Fresh doubles; update ids continue where earlier runs left them, as Telegram's never repeat."""
    telegram, llm = TelegramDouble(record_calls=False), LLMDouble(record=False)
    telegram._next_update_id = next(_update_ids)
    return telegram, llm


# Budgets on, as a production bot runs: every turn reads the ledger with its claim, checks the four
# limits and adds its consumption with the answer. Large enough that no simulated user reaches them.
BUDGETS = {
    "budget_tokens_per_day": "1000000000",
    "budget_tokens_per_month": "10000000000",
    "budget_usd_per_day": "1000",
    "budget_usd_per_month": "10000",
}


def say(message: str) -> None:
    """Progress for the person waiting."""
    print(f"[bench-bot] {message}", flush=True)


def bot_env(database_url: str, telegram: TelegramDouble, llm: LLMDouble, port: int) -> dict[str, str]:
    """Environment of the bot process: the doubles, pacing and rate limit off, streaming off."""
    return {
        **os.environ,
        **bot_environment(telegram, llm),
        "DATABASE_URL": database_url,
        "BOT_PORT": str(port),
        "STREAM_REPLIES": "off",
        "TELEGRAM_GLOBAL_PER_SECOND": "0",
        "TELEGRAM_CHAT_INTERVAL_SECONDS": "0",
        "TELEGRAM_GROUP_PER_MINUTE": "0",
        "RATE_LIMIT_BURST": "1000000",
        "RATE_LIMIT_PER_MINUTE": "1000000",
        **{name.upper(): value for name, value in BUDGETS.items()},
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }


class Driver:
    """Closed-loop users: send, wait for the answer, send again; latencies measured at the double."""

    def __init__(self, telegram: TelegramDouble) -> None:
        self.telegram = telegram
        self.next_user = 1_000_000

    async def run(self, *, users: int, messages: int, llm_latency: float) -> dict[str, Any]:
        """One measured run; returns throughput and added-latency percentiles."""
        per_user = max(messages // users, 1)
        added_ms: list[float] = []
        first_user = self.next_user
        self.next_user += users

        async def user(uid: int) -> None:
            await asyncio.sleep(random.uniform(0, llm_latency))  # this user's phase
            for i in range(per_user):
                asked_at = time.perf_counter()
                _, answer = await self.telegram.ask(
                    f"question {i} from {uid}", user_id=uid, timeout=120, username=None
                )
                added_ms.append((answer.sent_at - asked_at - llm_latency) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(user(first_user + n) for n in range(users)))
        wall = time.perf_counter() - started
        self.telegram.sent.clear()
        return {
            "messages": len(added_ms),
            "seconds": round(wall, 3),
            "messages_per_second": round(len(added_ms) / wall, 1),
            "added_latency_ms": percentiles(added_ms),
            "samples_ms": added_ms,
        }


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def pipeline(database_url: str, runs: int) -> tuple[dict[str, Any], float]:
    """Throughput/latency scenarios against the real bot process; returns results and its peak RSS."""
    telegram, llm = doubles()
    telegram.drafts_supported = False
    await telegram.start()
    await llm.start()
    driver = Driver(telegram)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parley_bot", env=bot_env(database_url, telegram, llm, free_port()), cwd=ROOT
    )
    results: dict[str, Any] = {}
    try:
        telegram.record_calls = True
        await telegram.wait_for(lambda: any(m == "getUpdates" for m, _ in telegram.calls), timeout=60)
        telegram.record_calls = False
        say("warm-up: 300 messages")
        await driver.run(users=50, messages=300, llm_latency=0.0)
        for latency, users, messages in SCENARIOS:
            key = f"llm_{latency:g}s_users_{users}"
            llm.latency = latency
            measured = [
                await driver.run(users=users, messages=messages, llm_latency=latency) for _ in range(runs)
            ]
            pooled = percentiles([ms for run in measured for ms in run.pop("samples_ms")])
            best = sorted(measured, key=lambda r: r["messages_per_second"])[len(measured) // 2]  # median run
            results[key] = {"median_run": best, "added_latency_ms_all_runs": pooled, "runs": measured}
            say(
                f"{key}: {best['messages_per_second']} msg/s, added p50 {pooled['p50']} ms "
                f"p95 {pooled['p95']} ms (all runs)"
            )
        rss = peak_rss_mb(process.pid)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
        await telegram.close()
        await llm.close()
    return results, rss


@contextmanager
def ping_counter() -> Iterator[dict[str, int]]:
    """Counts pool pre-ping round trips (invisible to pg_stat_statements) made in this process."""
    counts = {"pings": 0}
    original_ping = PGDialect_asyncpg.do_ping

    def ping(self: PGDialect_asyncpg, dbapi_connection: Any) -> bool:
        counts["pings"] += 1
        alive: bool = original_ping(self, dbapi_connection)  # type: ignore[no-untyped-call]
        return alive

    PGDialect_asyncpg.do_ping = ping  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        PGDialect_asyncpg.do_ping = original_ping  # type: ignore[method-assign]


def statements_run(server: LocalPostgres) -> tuple[int, int]:
    """Statements PostgreSQL executed in the bench database since the last reset (BEGIN/COMMIT included):
    (per-message statements, heartbeats). The process heartbeat (one statement every
    BOT_HEARTBEAT_SECONDS per process, whatever the traffic) is counted apart: it belongs to no message."""
    sql = (
        "SELECT coalesce(sum(calls) FILTER (WHERE query NOT LIKE '%INSERT INTO bot_instances%'), 0), "
        "coalesce(sum(calls) FILTER (WHERE query LIKE '%INSERT INTO bot_instances%'), 0) "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'parley') "
        "AND query NOT LIKE '%pg_stat_statements%'"
    )
    statements, heartbeats = server.psql(sql, "parley").split("|")
    return int(statements), int(heartbeats)


async def round_trips(server: LocalPostgres, database_url: str, *, pre_ping: bool) -> dict[str, Any]:
    """DB round trips per answered message of an in-process bot (20 users x 10 messages): statements
    as PostgreSQL counts them (pg_stat_statements, BEGIN/COMMIT included) plus pre-ping pings."""
    telegram, llm = doubles()
    await telegram.start()
    await llm.start()
    driver = Driver(telegram)
    settings = load_settings(
        BotSettings,
        database_url=database_url,
        db_pool_pre_ping=pre_ping,
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.url,
        llm_api_key=llm.api_key,
        llm_base_url=llm.url,
        bot_port=free_port(),
        stream_replies="off",
        telegram_global_per_second=0,
        telegram_chat_interval_seconds=0,
        telegram_group_per_minute=0,
        rate_limit_burst=1000,
        **BUDGETS,
        log_level="WARNING",
    )
    lifecycle = Lifecycle()
    task = asyncio.create_task(run(settings, lifecycle=lifecycle, handle_signals=False))
    try:
        await asyncio.sleep(1.0)
        await driver.run(
            users=20, messages=40, llm_latency=0.0
        )  # warm-up: connections and prepared statements
        server.psql("SELECT pg_stat_statements_reset()", "parley")
        with ping_counter() as pings:
            measured = await driver.run(users=20, messages=200, llm_latency=0.0)
        statements, heartbeats = statements_run(server)
    finally:
        lifecycle.request_stop()
        await asyncio.wait_for(task, 60)
        await telegram.close()
        await llm.close()
    return {
        "pool_pre_ping": pre_ping,
        "messages": measured["messages"],
        "statements": statements,
        "heartbeat_statements": heartbeats,
        "pings": pings["pings"],
        "per_message": round((statements + pings["pings"]) / measured["messages"], 2),
    }


async def main_async(runs: int) -> int:
    configure_logging(level="WARNING", fmt="console")
    say("starting PostgreSQL")
    settings = {"max_connections": "200", "shared_preload_libraries": "pg_stat_statements"}
    with throwaway_postgres("parley-bench-bot-", settings) as server:
        server.create_database("parley")
        database_url = server.url("parley")
        await migrate(database_url)
        server.psql("CREATE EXTENSION pg_stat_statements", "parley")
        version = server.psql("SHOW server_version").split()[0]
        say("counting DB round trips per message")
        trips_default = await round_trips(server, database_url, pre_ping=False)  # the bot's default
        trips_pre_ping = await round_trips(server, database_url, pre_ping=True)
        say(f"round trips per message: {trips_default['per_message']} (bot default, no pre-ping), "
            f"{trips_pre_ping['per_message']} (DB_POOL_PRE_PING=true)")  # fmt: skip
        say("pipeline scenarios against python -m parley_bot")
        scenarios, rss = await pipeline(database_url, runs)

    zero, one = "llm_0s_users_500", "llm_1s_users_50"
    goals = [
        Goal(
            "messages_per_second_llm0_500users",
            scenarios[zero]["median_run"]["messages_per_second"],
            ">=",
            200,
        ),
        Goal(
            "added_latency_p95_ms_llm1s_50users",
            scenarios[one]["added_latency_ms_all_runs"]["p95"],
            "<=",
            20,
        ),
        Goal(
            "added_latency_p95_ms_llm1s_1user",
            scenarios["llm_1s_users_1"]["added_latency_ms_all_runs"]["p95"],
            "<=",
            20,
        ),
        Goal("db_round_trips_per_message", trips_default["per_message"], "<=", 3),
        Goal("peak_rss_mb_500_in_flight", round(rss, 1), "<=", 200),
    ]
    path = write(
        "bot",
        params={
            "runs_per_scenario": runs,
            "scenarios": [{"llm_latency_s": lat, "users": u, "messages": m} for lat, u, m in SCENARIOS],
            "warm_up_messages": 300,
            "closed_loop": True,
            "statistics": "messages/s: the median run; added latency: percentiles over all runs' samples",
            "user_phases": "first message of each user at a uniformly random time within one "
            "LLM-latency period (0 s: all at once)",
            "pacing": "off (TELEGRAM_*_PER_* = 0)",
            "rate_limit": "off",
            "streaming": "off",
            "bot": "python -m parley_bot, polling, its default pool (20 connections, no overflow), "
            "LLM client on aiohttp",
            "round_trips_method": "in-process bot, 200 messages after warm-up: statements PostgreSQL ran "
            "(pg_stat_statements, BEGIN/COMMIT included) + pool pre-ping pings counted in the client; the "
            "process heartbeat (one statement per 5 s, not per message) is reported apart",
        },
        results={
            "scenarios": scenarios,
            "db_round_trips": {"bot_default_pre_ping_off": trips_default, "pre_ping_on": trips_pre_ping},
            "peak_rss_mb": round(rss, 1),
        },
        goals=goals,
        postgres=version,
    )
    say(f"wrote {path}")
    for goal in goals:
        say(f"  {goal.verdict()}")
    return 0


def main() -> int:
    """Run the benchmark; exit 1 only when it could not run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario (median reported)")
    args = parser.parse_args()
    try:
        return asyncio.run(main_async(args.runs))
    except Exception as exc:
        say(f"could not run: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
