"""`make bench-faults`: what users receive when the bot is broken on purpose.

Each scenario runs the real `python -m parley_bot` process (production defaults, pointed at the local
Telegram and LLM doubles) on a PostgreSQL of its own, sends messages from several users, injects one fault,
and counts per message what came back:

- answered: the message reached the model (alone or as part of a turn) and an answer covering it arrived;
- lost: sent, never answered; duplicated: covered by more than one answer;
- recovery_to_answer_s: from the moment the fault ended (the restarted process polls again, PostgreSQL is
  back) to the answer; for faults without an end (a hanging model, a burst) from the message's send.

Answers are the LLM double's echo of the question, so an answer names the messages it covers. Goals: 0
lost, 0 duplicated, every message answered within 30 s of recovery, and with a hanging primary the
fallback's answer within LLM_DEADLINE_SECONDS. Results: tools/bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from parley_core.logging import configure_logging
from parley_core.settings import BotSettings
from parley_testing.bot_process import BotProcess, bot_process_environment
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tools.bench.report import Goal, write
from tools.localpg import LocalPostgres, throwaway_postgres
from tools.run import migrate

USERS = [501, 502, 503]
POSTGRES_VERSION: list[str] = []


def say(message: str) -> None:
    """Progress for the person waiting."""
    print(f"[bench-faults] {message}", flush=True)


@dataclass
class Tally:
    """Messages sent in one scenario run and the answers that covered them."""

    telegram: TelegramDouble
    sent: dict[str, float] = field(default_factory=dict)  # question -> when it was sent
    recovered_at: float | None = None

    def send(self, text: str, user_id: int, **kwargs: Any) -> None:
        self.sent[text] = time.perf_counter()
        self.telegram.send_text(text, user_id=user_id, **kwargs)

    def coverage(self) -> dict[str, list[float]]:
        """For each question: when each answer covering it was sent."""
        covered: dict[str, list[float]] = {question: [] for question in self.sent}
        for message in self.telegram.sent:
            if not message.text.startswith("echo: "):
                continue
            for question in message.text.removeprefix("echo: ").split("\n\n"):
                if question in covered:
                    covered[question].append(message.sent_at)
        return covered

    def all_answered(self) -> bool:
        return all(self.coverage().values())

    def summary(self) -> dict[str, Any]:
        covered = self.coverage()
        waits = []
        for question, answers in covered.items():
            if answers:
                start = self.recovered_at if self.recovered_at is not None else self.sent[question]
                waits.append(max(min(answers) - max(start, self.sent[question]), 0.0))
        return {
            "sent": len(self.sent),
            "answered": sum(1 for answers in covered.values() if answers),
            "lost": sum(1 for answers in covered.values() if not answers),
            "duplicated": sum(len(answers) - 1 for answers in covered.values() if len(answers) > 1),
            "recovery_to_answer_s": waits,
        }


async def settle(tally: Tally, timeout: float = 60) -> None:
    """Wait until every message is answered (or the timeout), then a moment for duplicates to show."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not tally.all_answered():
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)


async def restart_and_settle(env: dict[str, str], telegram: TelegramDouble, tally: Tally) -> None:
    """Start the bot again after a kill, time recovery from its start, wait for every answer."""
    async with BotProcess(env) as second:
        await second.start(telegram)
        tally.recovered_at = time.perf_counter()
        await settle(tally)


class Scenario:
    """A fault; ``run`` returns the run's tally."""

    name = ""
    description = ""
    recovers = True  # the fault ends at a moment (a restart, the database back) answers are timed from

    def environment(self, database_url: str, telegram: TelegramDouble, llm: LLMDouble) -> dict[str, str]:
        return bot_process_environment(database_url, telegram, llm, LOG_LEVEL="WARNING")

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        raise NotImplementedError


class KillDuringAnswer(Scenario):
    name = "kill_9_mid_answer"
    description = "kill -9 while the model writes 3 users' answers (LLM 2 s), then restart"

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        env = self.environment(url, telegram, llm)
        llm.latency = 2.0
        async with BotProcess(env) as first:
            await first.start(telegram)
            for user in USERS:
                tally.send(f"mid-answer question of {user}", user)
            await telegram.wait_for(lambda: len(llm.requests) >= len(USERS))
            await first.kill()
        llm.latency = 0.0
        await restart_and_settle(env, telegram, tally)
        return tally


class KillDuringStream(KillDuringAnswer):
    name = "kill_9_mid_stream"
    description = "kill -9 while 3 answers stream as drafts, then restart"

    def environment(self, database_url: str, telegram: TelegramDouble, llm: LLMDouble) -> dict[str, str]:
        return {**super().environment(database_url, telegram, llm), "STREAM_REPLIES": "auto"}

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        env = self.environment(url, telegram, llm)
        llm.chunk_words, llm.chunk_delay = 1, 0.5
        async with BotProcess(env) as first:
            await first.start(telegram)
            for user in USERS:
                tally.send(f"streamed question of {user}", user)
            await telegram.wait_for(lambda: len({d.chat_id for d in telegram.drafts}) >= len(USERS))
            await first.kill()
        llm.chunk_delay = 0.0
        await restart_and_settle(env, telegram, tally)
        return tally


class KillAfterStore(Scenario):
    name = "kill_9_after_store"
    description = "answers stored, Telegram failing (502) when they are sent, kill -9, restart"

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        env = self.environment(url, telegram, llm)
        telegram.fail("sendMessage", 502, "Bad Gateway", times=3 * len(USERS))
        async with BotProcess(env) as first:
            await first.start(telegram)
            for user in USERS:
                tally.send(f"stored answer for {user}", user)
            await telegram.wait_for(lambda: telegram.failures_left("sendMessage") == 0, timeout=60)
            await asyncio.sleep(0.5)
            await first.kill()
        await restart_and_settle(env, telegram, tally)
        return tally


class PostgresOutage(Scenario):
    name = "postgres_stopped_30s"
    description = "PostgreSQL stopped for 30 s while 3 users send 2 messages each"

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            pg.stop(mode="fast")
            stopped = time.monotonic()
            for round_ in range(2):
                for user in USERS:
                    tally.send(f"outage message {round_} of {user}", user)
                await asyncio.sleep(10)
            await asyncio.sleep(max(30 - (time.monotonic() - stopped), 0))
            pg.start()
            tally.recovered_at = time.perf_counter()
            await settle(tally)
        return tally


class DatabaseDiesDuringCall(Scenario):
    name = "database_dies_during_llm_call"
    description = (
        "PostgreSQL stopped while 3 answers are being written (LLM 2 s), back after 5 s; then a next message"
    )

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        llm.latency = 2.0
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            for user in USERS:
                tally.send(f"answer during the outage for {user}", user)
            await telegram.wait_for(lambda: len(llm.requests) >= len(USERS))
            pg.stop(mode="fast")
            await asyncio.sleep(5)
            pg.start()
            tally.recovered_at = time.perf_counter()
            await settle(tally)
            llm.latency = 0.0
            for user in USERS:
                tally.send(f"next message of {user}", user)
            await settle(tally)
        return tally


class HangingPrimary(Scenario):
    name = "primary_hangs_defaults"
    description = "the primary model hangs; production timings (timeout 30 s, deadline 60 s)"
    recovers = False

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        llm.script(BotSettings.model_fields["llm_model"].default, *[script.hang()] * len(USERS))
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            for user in USERS:
                tally.send(f"is anyone there, asks {user}", user)
            await settle(tally, timeout=90)
        return tally


class Burst(Scenario):
    name = "burst_of_8"
    description = "3 users send 8 messages each within a second (production rate limit)"
    recovers = False

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        llm.latency = 0.5
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            for i in range(8):
                for user in USERS:
                    tally.send(f"burst {i} of {user}", user)
                await asyncio.sleep(0.1)
            await settle(tally)
        return tally


class SplitPaste(Scenario):
    name = "split_paste"
    description = "3 users paste a text Telegram splits into 3 messages (4096 + 4096 + rest)"
    recovers = False

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)

        def answer(messages: list[dict[str, Any]]) -> str:
            question = messages[-1]["content"]
            user = question.rpartition("end of ")[2]
            whole = question == "a" * 4096 + "b" * 4096 + f"end of {user}"
            return (
                f"echo: paste of {user}" if whole else f"only a part of a paste ({len(question)} characters)"
            )

        llm.answer = answer
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            for user in USERS:
                tally.sent[f"paste of {user}"] = time.perf_counter()
                for part in ("a" * 4096, "b" * 4096, f"end of {user}"):
                    telegram.send_text(part, user_id=user)
            await settle(tally)
        return tally


class ReusedUpdateId(Scenario):
    name = "reused_update_id"
    description = "an update id seen 8 days ago comes again (Telegram re-uses ids after a quiet week)"
    recovers = False

    async def run(self, pg: LocalPostgres, url: str, telegram: TelegramDouble, llm: LLMDouble) -> Tally:
        tally = Tally(telegram)
        first_id = 880_000
        last_id = first_id + len(USERS) - 1
        seen_long_ago = (
            "INSERT INTO telegram_updates SELECT id, now() - interval '8 days' FROM generate_series"
        )
        pg.psql(f"{seen_long_ago}({first_id}, {last_id}) AS id", "parley")
        async with BotProcess(self.environment(url, telegram, llm)) as bot:
            await bot.start(telegram)
            for index, user in enumerate(USERS):
                question = f"same id, new message from {user}"
                tally.sent[question] = time.perf_counter()
                telegram.push_update(telegram.text_update(question, user_id=user), update_id=first_id + index)
            await settle(tally)
        return tally


SCENARIOS: list[Scenario] = [
    KillDuringAnswer(),
    KillDuringStream(),
    KillAfterStore(),
    PostgresOutage(),
    DatabaseDiesDuringCall(),
    HangingPrimary(),
    Burst(),
    SplitPaste(),
    ReusedUpdateId(),
]


async def run_once(scenario: Scenario) -> dict[str, Any]:
    telegram, llm = TelegramDouble(), LLMDouble()
    await telegram.start()
    await llm.start()
    try:
        with throwaway_postgres(f"parley-bench-faults-{scenario.name}-") as pg:
            pg.create_database("parley")
            url = pg.url("parley")
            await migrate(url)
            POSTGRES_VERSION.append(pg.psql("SHOW server_version").split()[0])
            tally = await scenario.run(pg, url, telegram, llm)
            return tally.summary()
    finally:
        await telegram.close()
        await llm.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0


async def main_async(runs: int, only: list[str]) -> int:
    configure_logging(level="WARNING", fmt="console")
    results: dict[str, Any] = {}
    for scenario in SCENARIOS:
        if only and scenario.name not in only:
            continue
        totals = {"sent": 0, "answered": 0, "lost": 0, "duplicated": 0}
        waits: list[float] = []
        for run in range(runs):
            say(f"{scenario.name} (run {run + 1}/{runs}): {scenario.description}")
            summary = await run_once(scenario)
            for key in totals:
                totals[key] += summary[key]
            waits += summary["recovery_to_answer_s"]
            say(f"  sent {summary['sent']}, answered {summary['answered']}, lost {summary['lost']}, "
                f"duplicated {summary['duplicated']}")  # fmt: skip
        results[scenario.name] = {
            "description": scenario.description,
            **totals,
            "recovery_to_answer_s": {
                "p50": round(statistics.median(waits), 2) if waits else None,
                "p95": round(p95(waits), 2),
                "max": round(max(waits), 2) if waits else None,
            },
        }
    lost = sum(r["lost"] for r in results.values())
    duplicated = sum(r["duplicated"] for r in results.values())
    recovering = [s.name for s in SCENARIOS if s.recovers and s.name in results]
    worst = (
        max((results[name]["recovery_to_answer_s"]["max"] or 0.0) for name in recovering)
        if recovering
        else 0.0
    )
    goals = [
        Goal("messages_lost", lost, "<=", 0),
        Goal("messages_duplicated", duplicated, "<=", 0),
        Goal("slowest_answer_after_recovery_s", worst, "<=", 30),
    ]
    if "primary_hangs_defaults" in results:
        deadline = BotSettings.model_fields["llm_deadline_seconds"].default
        hang = results["primary_hangs_defaults"]["recovery_to_answer_s"]["max"] or 0.0
        goals.append(Goal("hanging_primary_answered_within_deadline_s", hang, "<=", deadline))
    version = POSTGRES_VERSION[0] if POSTGRES_VERSION else None
    path = write(
        "faults" if not only else "faults-partial",
        params={
            "runs_per_scenario": runs,
            "users": len(USERS),
            "bot": "python -m parley_bot, polling, production defaults (pacing, rate limit, timings), "
            "pointed at the Telegram and LLM doubles; PostgreSQL 15 of its own per run",
            "recovery": "the restarted process's first getUpdates, or PostgreSQL accepting connections "
            "again; for a hanging model, a burst or a paste: the message's send",
        },
        results=results,
        goals=goals,
        postgres=version,
    )
    say(f"wrote {path}")
    for goal in goals:
        say(f"  {goal.verdict()}")
    return 0


def main() -> int:
    """Run the benchmark; exit 1 only when it could not run."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the doubles see killed clients
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per scenario")
    parser.add_argument("--only", nargs="*", default=[], help="scenario names to run (default: all)")
    args = parser.parse_args()
    try:
        return asyncio.run(main_async(args.runs, args.only))
    except Exception as exc:
        say(f"could not run: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
