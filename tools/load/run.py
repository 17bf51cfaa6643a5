"""`make load`: a bounded, headless locust run against a local stack -> tools/bench/results/load.json.

Starts its own PostgreSQL (demo data), then a real `python -m parley_api` twice:
1. rate limit off, `DashboardUser`s for LOAD_SECONDS: the throughput/latency baseline;
2. rate limit on (the default 10/minute), `RateLimitProbe`s sharing one account: the limiter must
   answer 429 with Retry-After and let through no more than the limit;
then the bot:
3. the Telegram and LLM doubles (`python -m tools.doubles`, LLM latency 1 s) and a real
   `python -m parley_bot` polling them with its production defaults (pacing, rate limit,
   streaming), and `TelegramUser`s (tools/load/bot_locustfile.py) chatting for LOAD_SECONDS.
Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from parley_core.passwords import hash_password
from tools.bench.report import Goal, write
from tools.localpg import free_port, throwaway_postgres
from tools.run import migrate
from tools.seed_demo import DemoSpec, load

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "loadtest", "load-test-password-long"


def say(message: str) -> None:
    """Progress for the person waiting."""
    print(f"[load] {message}", flush=True)


def start_api(url: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """A real API process on a free port; returns it and its base URL once ready."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "parley_api"],
        env={**os.environ, "DATABASE_URL": url, "API_PORT": str(port), "LOG_LEVEL": "WARNING", **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                # One authenticated request fills the verification cache, so the run measures
                # steady state rather than twenty simultaneous first bcrypt checks.
                httpx.get(f"{base}/api/v1/stats?period=day", auth=(USER, PASSWORD), timeout=30)
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=40)


def run_locust(host: str, *, users: int, seconds: int, csv_prefix: Path, weights: dict[str, str],
               locustfile: str = "api_locustfile.py") -> None:  # fmt: skip
    """One headless locust run; its statistics land in <csv_prefix>_stats.csv."""
    env = {**os.environ, "LOAD_USER": USER, "LOAD_PASSWORD": PASSWORD, **weights}
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "tools" / "load" / locustfile), "--headless",
        "--host", host, "-u", str(users), "-r", str(max(users // 2, 1)), "-t", f"{seconds}s",
        "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5",
    ]  # fmt: skip
    subprocess.run(command, env=env, cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=seconds + 60)  # fmt: skip


def read_stats(csv_prefix: Path) -> dict[str, dict[str, float]]:
    """Per request name: count, failures, requests/s, mean, p50, p95, p99, max (ms), error rate."""
    results = {}
    with open(f"{csv_prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            count = int(row["Request Count"])
            failures = int(row["Failure Count"])
            results[row["Name"]] = {
                "requests": count,
                "failures": failures,
                "error_rate": round(failures / count, 4) if count else 0.0,
                "requests_per_second": round(float(row["Requests/s"]), 1),
                "mean_ms": round(float(row["Average Response Time"]), 1),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
                "max_ms": round(float(row["Max Response Time"]), 1),
            }
    return results


def status_counts(base: str) -> dict[str, float]:
    """Stats-route responses by HTTP status, from the API's own /metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith("http_requests_total{") and 'handler="/api/v1/stats"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counts[status] = counts.get(status, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def bot_phase(
    url: str, *, users: int, seconds: int, workdir: Path, llm_latency: float = 1.0
) -> dict[str, Any]:
    """Phase 3: the doubles, a real bot on database ``url``, and ``users`` chatting for ``seconds``."""
    doubles = subprocess.Popen(
        [sys.executable, "-m", "tools.doubles", "--llm-latency", str(llm_latency)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    bot: subprocess.Popen[bytes] | None = None
    try:
        assert doubles.stdout is not None
        to_doubles = json.loads(doubles.stdout.readline())  # TELEGRAM_API_URL, LLM_BASE_URL, ...
        port = free_port()
        env = {**os.environ, **to_doubles, "DATABASE_URL": url, "BOT_PORT": str(port), "LOG_LEVEL": "WARNING"}
        bot = subprocess.Popen([sys.executable, "-m", "parley_bot"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while not _ready(f"http://127.0.0.1:{port}/ready"):
            if time.monotonic() > deadline or bot.poll() is not None:
                raise RuntimeError("the bot did not become ready")
            time.sleep(0.2)
        run_locust(to_doubles["TELEGRAM_API_URL"], users=users, seconds=seconds, csv_prefix=workdir / "bot",
                   weights={}, locustfile="bot_locustfile.py")  # fmt: skip
        return read_stats(workdir / "bot")
    finally:
        for process in (bot, doubles):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=40)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Both phases; writes tools/bench/results/load.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent dashboard users")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--bot-users", type=int, default=50, help="concurrent Telegram users (phase 3)")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    seconds = min(args.seconds, 50)  # phase 2 stays inside one rate-limit minute
    with (
        throwaway_postgres("parley-load-pg-", {"fsync": "off", "shared_buffers": "512MB"}) as pg,
        tempfile.TemporaryDirectory(prefix="parley-load-") as workdir,
    ):
        base_dir = Path(workdir)  # locust's CSV files
        postgres_version = pg.psql("SHOW server_version").split()[0]
        pg.create_database("parley")
        url = pg.url("parley")
        spec = DemoSpec(users=max(args.messages // 100, 100), messages=args.messages)
        say(f"loading {spec.messages:,} demo messages")
        asyncio.run(migrate(url))
        asyncio.run(load(url.replace("+asyncpg", ""), spec, replace=True, progress=False))
        account = f"('{USER}', '{hash_password(PASSWORD)}', 'registration')"  # constants only
        insert = f"INSERT INTO api_users (username, password_hash, source) VALUES {account}"  # noqa: S608
        pg.psql(insert, database="parley")

        api, host = start_api(url, RATE_LIMIT_ENABLED="false")
        try:
            say(f"phase 1: {args.users} dashboard users for {args.seconds} s, rate limit off")
            run_locust(host, users=args.users, seconds=args.seconds, csv_prefix=base_dir / "baseline",
                       weights={"LOAD_DASHBOARD_WEIGHT": "1", "LOAD_RATE_LIMIT_WEIGHT": "0"})  # fmt: skip
            results["baseline"] = read_stats(base_dir / "baseline")
        finally:
            stop(api)

        api, host = start_api(url, STATS_API_RATE_LIMIT="10/minute")
        try:
            say(f"phase 2: 5 probes sharing one account for {seconds} s, STATS_API_RATE_LIMIT=10/minute")
            run_locust(host, users=5, seconds=seconds, csv_prefix=base_dir / "ratelimit",
                       weights={"LOAD_DASHBOARD_WEIGHT": "0", "LOAD_RATE_LIMIT_WEIGHT": "1"})  # fmt: skip
            results["rate_limit"] = {**read_stats(base_dir / "ratelimit"), "statuses": status_counts(host)}
        finally:
            stop(api)

        say(f"phase 3: {args.bot_users} Telegram users chatting with the bot for {args.seconds} s, LLM 1 s")
        results["bot"] = bot_phase(url, users=args.bot_users, seconds=args.seconds, workdir=base_dir)

    total = results["baseline"]["Aggregated"]
    limited = results["rate_limit"]["statuses"]
    goals = [
        Goal("baseline_error_rate", total["error_rate"], "<=", 0),
        Goal("rate_limit_unexpected_responses", results["rate_limit"]["Aggregated"]["failures"], "<=", 0),
        Goal("rate_limit_ok_responses_in_one_minute", limited.get("200", 0), "<=", 10),
        Goal("rate_limit_429_responses", limited.get("429", 0), ">=", 1),
        Goal("bot_error_rate", results["bot"]["Aggregated"]["error_rate"], "<=", 0),
    ]
    params = {
        "dashboard_users": args.users,
        "seconds": args.seconds,
        "messages": args.messages,
        "rate_limit_probes": 5,
        "rate_limit_seconds": seconds,
        "rate_limit": "10/minute",
        "bot_users": args.bot_users,
        "bot_llm_latency_s": 1.0,
        "bot_settings": "production defaults (pacing 30/s and 1/s per chat, rate limit 5 + 20/min, "
        "streaming auto) against tools.doubles",
        "bot_user_think_time_s": "2-4",
        "tool": "locust, headless; server, database and load generator share the machine's cores",
    }
    path = write("load", params=params, results=results, goals=goals, postgres=postgres_version)
    say(f"wrote {path}: {total['requests_per_second']} req/s, mean {total['mean_ms']} ms, "
        f"p95 {total['p95_ms']} ms, p99 {total['p99_ms']} ms, errors {total['error_rate']:.2%}")  # fmt: skip
    chat = results["bot"]["Aggregated"]
    say(f"bot: {chat['requests_per_second']} messages/s, mean {chat['mean_ms']} ms, p95 {chat['p95_ms']} ms, "
        f"p99 {chat['p99_ms']} ms (LLM 1 s included), errors {chat['error_rate']:.2%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
