"""`make seed-demo`: realistic demo data, fast — COPY in batches with a progress bar.

The shape matters more than the volume: a few heavy users and a long tail (Pareto), dialogs as
bursts of user/assistant turns, a daily cycle peaking in the evening, growth over time, a model
mix with fallbacks, token counts and latencies, and some users who ran /reset (soft-deleted
history). The dashboard and the benchmarks use it.

Rollup triggers are disabled during the bulk load and the rollups rebuilt set-based afterwards
(`stats_rebuild()`), which is far faster than ten million trigger calls and gives the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from tqdm import tqdm

from parley_core.settings import ParleySettings, load_settings
from tools.run import migrate, start_local_postgres

BATCH = 50_000
MESSAGE_COLUMNS = (
    "id", "user_id", "role", "content", "content_length", "model", "prompt_tokens",
    "completion_tokens", "latency_ms", "fallback_used", "created_at", "deleted_at", "cost_usd", "stopped",
    "replaced",
)  # fmt: skip
USER_COLUMNS = ("id", "username", "first_name", "last_name", "language_code", "created_at", "updated_at")
PRIMARY, FALLBACK, OTHER = (
    "openai/gpt-4o-mini",
    "meta-llama/llama-3.1-8b-instruct",
    "anthropic/claude-3.5-haiku",
)
# US dollars per million prompt and completion tokens: what the demo's answers cost.
PRICES_PER_MILLION = {
    PRIMARY: (Decimal("0.15"), Decimal("0.60")),
    FALLBACK: (Decimal("0.02"), Decimal("0.05")),
    OTHER: (Decimal("0.80"), Decimal("4.00")),
}
# Relative message volume by UTC hour: quiet nights, busy evenings.
HOURLY_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 9, 10, 12, 13, 13, 11, 7, 4]
WORDS = [
    "the",
    "a",
    "kubernetes",
    "pod",
    "deploy",
    "helm",
    "chart",
    "python",
    "async",
    "error",
    "log",
    "metric",
    "alert",
    "how",
    "why",
    "what",
    "can",
    "you",
    "please",
    "explain",
    "show",
    "me",
    "write",
    "code",
    "test",
    "database",
    "query",
    "index",
    "fast",
    "slow",
    "latency",
    "cluster",
    "node",
    "service",
    "ingress",
    "secret",
    "vault",
    "token",
    "model",
    "answer",
    "question",
    "thanks",
    "great",
    "help",
    "example",
]
FIRST_NAMES = ["Anna", "Boris", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia"]
LANGUAGES = ["en", "en", "en", "ru", "de", "es", "fr", None]
BURST_HOURS = timedelta(hours=6)
AHEAD = timedelta(minutes=10)


@dataclass(frozen=True)
class DemoSpec:
    """How much data and over which span; the seed makes it repeatable."""

    users: int
    messages: int
    days: int = 90
    seed: int = 42
    reset_share: float = 0.03
    # Skew: a lower Pareto shape makes heavy users heavier; a burst puts that share of dialogs in
    # the last BURST_HOURS; a clock running ahead stamps that share of dialogs up to AHEAD later.
    pareto_shape: float = 1.2
    burst_share: float = 0.0
    ahead_share: float = 0.0


def _sentences(rng: random.Random, count: int, min_words: int, max_words: int) -> list[str]:
    pool = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))]
        pool.append(" ".join(words).capitalize() + rng.choice([".", "?", "!"]))
    return pool


def _telegram_ids(rng: random.Random, count: int) -> list[int]:
    ids: set[int] = set()
    while len(ids) < count:
        ids.add(rng.randint(10_000_000, 7_999_999_999))
    return sorted(ids)


def _weighted_moment(rng: random.Random, start: datetime, days: int) -> datetime:
    """A time in [start, start+days): later days busier (growth), evenings busier (daily cycle)."""
    day = int(days * math.sqrt(rng.random()))  # density grows linearly over the span
    hour = rng.choices(range(24), weights=HOURLY_WEIGHTS)[0]
    return start + timedelta(days=day, hours=hour, seconds=rng.random() * 3600)


def generate_users(spec: DemoSpec, now: datetime) -> tuple[list[tuple[object, ...]], list[float]]:
    """User rows and each user's activity weight (Pareto: a few heavy users, a long tail)."""
    rng = random.Random(spec.seed)
    start = now - timedelta(days=spec.days)
    rows: list[tuple[object, ...]] = []
    weights: list[float] = []
    for index, user_id in enumerate(_telegram_ids(rng, spec.users)):
        created = start + timedelta(seconds=rng.random() * spec.days * 86400 * 0.8)
        name = rng.choice(FIRST_NAMES)
        rows.append((user_id, f"{name.lower()}{index}", name, None, rng.choice(LANGUAGES), created, created))
        weights.append(rng.paretovariate(spec.pareto_shape))
    return rows, weights


def generate_messages(
    spec: DemoSpec, users: list[tuple[object, ...]], weights: list[float], now: datetime
) -> Iterator[tuple[object, ...]]:
    """Message rows in dialogs of alternating user/assistant turns, never before the user existed."""
    rng = random.Random(spec.seed + 1)
    questions = _sentences(rng, 2000, 3, 25)
    answers = _sentences(rng, 2000, 20, 160)
    resetters = set(rng.sample(range(len(users)), k=int(len(users) * spec.reset_share)))
    start = now - timedelta(days=spec.days)
    produced = 0
    cumulative = list(_accumulate(weights))
    while produced < spec.messages:
        index = _pick(rng, cumulative)
        user_id, created = users[index][0], users[index][5]
        assert isinstance(created, datetime)
        moment = max(_weighted_moment(rng, start, spec.days), created + timedelta(minutes=1))
        end = now
        if spec.burst_share and rng.random() < spec.burst_share:
            moment = max(now - BURST_HOURS * rng.random(), created + timedelta(minutes=1))
        if spec.ahead_share and rng.random() < spec.ahead_share:
            moment, end = now + AHEAD * rng.random(), now + 2 * AHEAD
        if moment >= end:
            continue
        turns = min(rng.randint(1, 8), (spec.messages - produced + 1) // 2)
        deleted_at = (
            now - timedelta(days=rng.random() * 3) if index in resetters and rng.random() < 0.5 else None
        )
        for _ in range(turns):
            if moment >= end or produced >= spec.messages:
                break
            question = rng.choice(questions)
            yield (uuid.uuid4(), user_id, "user", question, len(question), None, None, None, None,
                   False, moment, deleted_at, None, False, False)  # fmt: skip
            produced += 1
            moment += timedelta(seconds=rng.uniform(0.5, 20))
            if moment >= end or produced >= spec.messages:
                break
            roll = rng.random()
            model, fallback = (
                (PRIMARY, False) if roll < 0.85 else (FALLBACK, True) if roll < 0.95 else (OTHER, False)
            )
            answer = rng.choice(answers)
            latency = int(rng.lognormvariate(7.0, 0.6))
            tokens = (rng.randint(50, 3000), rng.randint(20, 800))
            prompt_price, completion_price = PRICES_PER_MILLION[model]
            cost = (Decimal(tokens[0]) * prompt_price + Decimal(tokens[1]) * completion_price) / 1_000_000
            flags = rng.random()  # about 2 % of answers stopped by the user, 3 % asked again for (/retry)
            yield (uuid.uuid4(), user_id, "assistant", answer, len(answer), model, *tokens, latency,
                   fallback, moment, deleted_at, cost, flags < 0.02, 0.02 <= flags < 0.05)  # fmt: skip
            produced += 1
            moment += timedelta(seconds=rng.uniform(10, 300))


def _accumulate(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


async def _copy_in_batches(
    conn: asyncpg.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Iterator[tuple[object, ...]],
    *,
    total: int,
    progress: bool,
) -> None:
    bar = tqdm(total=total, desc=f"COPY {table}", unit="rows", unit_scale=True, disable=not progress)
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            bar.update(len(batch))
            batch = []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=columns)
        bar.update(len(batch))
    bar.close()


async def load(
    dsn: str, spec: DemoSpec, *, replace: bool, progress: bool = True, now: datetime | None = None
) -> None:
    """Fill the database at ``dsn`` (plain postgresql:// DSN) with demo data."""
    now = now or datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        existing = await conn.fetchval("SELECT count(*) FROM messages")
        if existing and not replace:
            raise SystemExit(
                f"the database already has {existing} messages; run with REPLACE=1 to replace them"
            )
        users, weights = generate_users(spec, now)
        async with conn.transaction():
            await conn.execute("TRUNCATE users, messages, user_settings CASCADE")
            await conn.execute("ALTER TABLE messages DISABLE TRIGGER stats_messages")
            await conn.execute("ALTER TABLE users DISABLE TRIGGER stats_users")
            await _copy_in_batches(
                conn, "users", USER_COLUMNS, iter(users), total=len(users), progress=progress
            )
            messages = generate_messages(spec, users, weights, now)
            await _copy_in_batches(
                conn, "messages", MESSAGE_COLUMNS, messages, total=spec.messages, progress=progress
            )
            if progress:
                print("rebuilding stats rollups ...", flush=True)
            await conn.execute("SELECT stats_rebuild()")
            await conn.execute("ALTER TABLE messages ENABLE TRIGGER stats_messages")
            await conn.execute("ALTER TABLE users ENABLE TRIGGER stats_users")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, find the database (DATABASE_URL or the local cluster) and load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--replace", action="store_true", help="replace existing users and messages")
    args = parser.parse_args(argv)
    settings = load_settings(ParleySettings)
    server = None
    if settings.database_url is None:
        server, url = start_local_postgres()
    else:
        url = settings.sqlalchemy_url().render_as_string(hide_password=False)
    asyncio.run(migrate(url))
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    spec = DemoSpec(users=args.users, messages=args.messages, days=args.days, seed=args.seed)
    try:
        asyncio.run(load(dsn, spec, replace=args.replace))
    finally:
        if server is not None:
            print("(the local PostgreSQL keeps running; `make run` reuses it)")
    print(f"loaded {spec.users} users and {spec.messages} messages over {spec.days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
