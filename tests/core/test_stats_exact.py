"""The rollups answer exactly what a direct aggregate over `messages` answers, through every change,
for rolling and calendar windows, with messages stamped ahead of now among them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_core.stats import costs, latency, queries, retention, rolling, spenders
from parley_core.stats.periods import HOUR, Period, Window, WindowMode, truncate, window_for
from parley_core.stats.queries import StatsQuery
from parley_testing import stats_reference as baseline

NOW = datetime(2026, 11, 26, 14, 35, tzinfo=UTC)
MODELS = ["primary/model", "fallback/model"]
DIALOG_GAP = timedelta(minutes=30)
INSERT_USERS = "INSERT INTO users (id, created_at) SELECT g, :at FROM generate_series(1, :n) g"


async def _run(conn: AsyncConnection, query: StatsQuery[Any]) -> Any:
    rows = (await conn.execute(query.statement, query.params)).all()
    return query.parse(rows)


def _rollups(mode: WindowMode) -> Any:
    return rolling if mode is WindowMode.ROLLING else queries


async def _move(conn: AsyncConnection, window: Window) -> bool:
    if window.mode is WindowMode.ROLLING:
        return bool(await _run(conn, rolling.move_windows_query(window)))
    return bool(await _run(conn, queries.advance_window_query(window)))


async def _figures(
    conn: AsyncConnection, module: Any, period: Period, mode: WindowMode = WindowMode.CALENDAR
) -> dict[str, Any]:
    window = window_for(period, NOW, mode)
    if module is not baseline:
        assert await _move(conn, window)
    return {
        "summary": await _run(conn, module.summary_query(window)),
        "activity": await _run(conn, module.activity_query(window)),
        "recent": await _run(
            conn, module.recent_dialogs_query(window, limit=15, preview_length=20, dialog_gap=DIALOG_GAP)
        ),
        "top": await _run(conn, module.top_users_query(window, limit=10)),
        "llm": await _run(conn, module.llm_usage_query(window)),
        "cost_timeline": await _run(
            conn, (baseline if module is baseline else costs).cost_timeline_query(window)
        ),
        "latency": await _run(conn, (baseline if module is baseline else latency).latency_query(window)),
        "spenders": await _run(
            conn, (baseline if module is baseline else spenders).top_spenders_query(window, limit=10)
        ),
    }


async def _assert_exact(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        for mode in WindowMode:
            for period in Period:
                rollup = await _figures(conn, _rollups(mode), period, mode)
                direct = await _figures(conn, baseline, period, mode)
                for name in rollup:
                    assert rollup[name] == direct[name], f"{mode} {period}: {name} differs"
            await conn.commit()
        assert await _run(conn, retention.retention_query(NOW)) == await _run(
            conn, baseline.retention_query(NOW)
        ), "retention"
        assert await _run(conn, rolling.move_audience_query(NOW))
        for tracked in (True, False):
            audience = await _run(conn, rolling.audience_query(NOW, tracked=tracked))
            assert audience == await _run(conn, baseline.audience_query(NOW)), f"audience tracked={tracked}"
        await conn.commit()


ROLLUP_TABLES = {
    "stats_buckets": "message_count <> 0 OR length_sum <> 0",
    "stats_user_buckets": "true",
    "stats_bucket_gaps": "users <> 0",
    "stats_model_buckets": "requests <> 0",
    "stats_signups": "users <> 0",
    "stats_retention": "users <> 0",
    "stats_latency_bins": "answers <> 0",
}


async def _rollup_rows(conn: AsyncConnection) -> dict[str, list[Any]]:
    return {
        table: sorted(tuple(r) for r in await conn.execute(text(f"SELECT * FROM {table} WHERE {live}")))  # noqa: S608
        for table, live in ROLLUP_TABLES.items()
    }


async def _assert_rollups_as_rebuilt(engine: AsyncEngine) -> None:
    """Every rollup row is what recomputing from `messages` gives (empty rows aside)."""
    async with engine.connect() as conn:
        kept = await _rollup_rows(conn)
        await conn.execute(text("SELECT stats_rebuild()"))
        rebuilt = await _rollup_rows(conn)
        await conn.rollback()
    for table in ROLLUP_TABLES:
        assert kept[table] == rebuilt[table], table


def _moment(rng: random.Random) -> datetime:
    # Mostly inside the last 60 days (both windows of `month`), some older; a few stamped up to three
    # days ahead (a writer whose clock runs ahead), and some within the minutes around each window's
    # edges, where a rolling window cuts an hour.
    draw = rng.random()
    if draw < 0.04:
        return NOW + timedelta(seconds=rng.random() * 3 * 86400)
    if draw < 0.2:
        edge = rng.choice([timedelta(0), timedelta(days=1), timedelta(days=2), timedelta(days=7),
                           timedelta(days=14), timedelta(days=30), timedelta(days=60)])  # fmt: skip
        return NOW - edge + timedelta(minutes=rng.uniform(-70, 70))
    return NOW - timedelta(seconds=rng.random() * 70 * 86400)


def _cost(rng: random.Random) -> Decimal | None:
    """An answer's cost as the column stores it (10 decimal places), unknown for some answers."""
    return None if rng.random() < 0.25 else Decimal(rng.randint(1, 10**8)) / 10**10


async def _insert_random(conn: AsyncConnection, rng: random.Random, users: list[int], count: int) -> None:
    for _ in range(count):
        role = rng.choice(["user", "assistant"])
        content = "x" * rng.randint(0, 300)
        await conn.execute(
            text(
                "INSERT INTO messages (id, user_id, role, content, content_length, model, prompt_tokens,"
                " completion_tokens, latency_ms, fallback_used, cost_usd, stopped, created_at)"
                " VALUES (:id, :u, :role, :c, :len, :model, :pt, :ct, :lat, :fb, :cost, :stopped, :at)"
            ),
            {
                "id": uuid.uuid4(), "u": rng.choice(users), "role": role, "c": content, "len": len(content),
                "model": rng.choice(MODELS) if role == "assistant" else None,
                "pt": rng.randint(1, 500), "ct": rng.randint(1, 500),
                "lat": rng.choice([None, rng.randint(100, 5000)]), "fb": rng.random() < 0.2,
                "cost": _cost(rng) if role == "assistant" else None, "at": _moment(rng),
                "stopped": role == "assistant" and rng.random() < 0.1,
            },
        )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollups_match_direct_aggregates_through_changes(engine: AsyncEngine, seed: int) -> None:
    rng = random.Random(seed)
    users = [rng.randint(1, 10**10) for _ in range(25)]
    async with engine.begin() as conn:
        for user_id in users:
            await conn.execute(
                text("INSERT INTO users (id, created_at) VALUES (:id, :at)"),
                {"id": user_id, "at": NOW - timedelta(days=rng.randint(0, 80), hours=rng.randint(0, 23))},
            )
        await _insert_random(conn, rng, users, 400)
    await _assert_exact(engine)

    async with engine.begin() as conn:
        # /reset: soft-delete a user's whole history.
        await conn.execute(
            text("UPDATE messages SET deleted_at = :now WHERE user_id = :u AND deleted_at IS NULL"),
            {"now": NOW, "u": users[0]},
        )
        # Soft-delete, hard-delete and move random single messages; undelete some.
        ids = [r[0] for r in await conn.execute(text("SELECT id FROM messages ORDER BY id"))]
        for message_id in rng.sample(ids, 40):
            await conn.execute(text("UPDATE messages SET deleted_at = :now WHERE id = :id"),
                               {"now": NOW, "id": message_id})  # fmt: skip
        for message_id in rng.sample(ids, 20):
            await conn.execute(text("DELETE FROM messages WHERE id = :id"), {"id": message_id})
        for message_id in rng.sample(ids, 20):
            await conn.execute(text("UPDATE messages SET created_at = :at WHERE id = :id"),
                               {"at": _moment(rng), "id": message_id})  # fmt: skip
        await conn.execute(text("UPDATE messages SET deleted_at = NULL WHERE user_id = :u"), {"u": users[0]})
        await conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": users[1]})
        # First days move: the users' days count under the new ones.
        earlier = "UPDATE users SET created_at = created_at - interval '9 days' WHERE id = ANY(:u)"
        await conn.execute(text(earlier), {"u": users[2:5]})
        await _insert_random(conn, rng, users[2:], 100)
    await _assert_exact(engine)

    async with engine.begin() as conn:
        # Many rows per statement: part of several users' buckets (their first and last messages
        # among them), a hard delete, and one statement that soft-deletes some rows and moves others.
        ids = [r[0] for r in await conn.execute(text("SELECT id FROM messages ORDER BY id"))]
        await conn.execute(text("UPDATE messages SET deleted_at = :now WHERE id = ANY(:ids)"),
                           {"now": NOW, "ids": rng.sample(ids, 120)})  # fmt: skip
        await conn.execute(text("DELETE FROM messages WHERE id = ANY(:ids)"), {"ids": rng.sample(ids, 60)})
        await conn.execute(
            text(
                "UPDATE messages SET deleted_at = CASE WHEN id = ANY(:gone) THEN :now ELSE deleted_at END,"
                " created_at = CASE WHEN id = ANY(:moved) THEN created_at + interval '3 hours'"
                " ELSE created_at END WHERE id = ANY(:gone) OR id = ANY(:moved)"
            ),
            {"now": NOW, "gone": rng.sample(ids, 40), "moved": rng.sample(ids, 40)},
        )
        await conn.execute(text("UPDATE messages SET unanswered = true WHERE id = ANY(:ids)"),
                           {"ids": rng.sample(ids, 30)})  # fmt: skip
        await conn.execute(text("UPDATE messages SET replaced = true WHERE id = ANY(:ids)"),
                           {"ids": rng.sample(ids, 30)})  # fmt: skip
        await conn.execute(text("UPDATE messages SET stopped = NOT stopped WHERE id = ANY(:ids)"),
                           {"ids": rng.sample(ids, 10)})  # fmt: skip
    await _assert_exact(engine)
    await _assert_rollups_as_rebuilt(engine)

    async with engine.begin() as conn:
        await conn.execute(text("SELECT stats_rebuild()"))
    await _assert_exact(engine)


@pytest.mark.parametrize(
    ("mode", "points"),
    [(WindowMode.CALENDAR, (24, 7, 30)), (WindowMode.ROLLING, (25, 8, 31))],
)
async def test_empty_database_gives_zero_filled_windows(
    engine: AsyncEngine, mode: WindowMode, points: tuple[int, int, int]
) -> None:
    async with engine.connect() as conn:
        for period, count in zip(Period, points, strict=True):
            figures = await _figures(conn, _rollups(mode), period, mode)
            assert len(figures["activity"]) == count
            assert all(p.message_count == p.active_users == 0 for p in figures["activity"])
            # The current point is partial; a rolling window's first point too, as it starts mid-hour.
            partial = [p.partial for p in figures["activity"]]
            assert partial == [mode is WindowMode.ROLLING] + [False] * (count - 2) + [True]
            assert figures["summary"][0] == queries.SummaryFigures(0, 0, 0, 0)
            assert figures["recent"] == figures["top"] == figures["llm"] == []
    await _assert_exact(engine)


@pytest.mark.parametrize("mode", list(WindowMode))
async def test_top_users_with_many_ties_and_heavy_users(engine: AsyncEngine, mode: WindowMode) -> None:
    rng = random.Random(7)
    async with engine.begin() as conn:
        await conn.execute(text(INSERT_USERS), {"n": 300, "at": NOW - timedelta(days=90)})
        for user_id in range(1, 301):
            # Many users share the same small counts; a few are heavy; spread over 40 days.
            count = rng.choice([1, 1, 2, 2, 3, 5]) if user_id > 12 else rng.randint(20, 60)
            await conn.execute(
                text(
                    "INSERT INTO messages (user_id, role, content, content_length, created_at)"
                    " SELECT :u, 'user', 'hi', 2, CAST(:now AS timestamptz) - random() * interval '40 days'"
                    " FROM generate_series(1, :n)"
                ),
                {"u": user_id, "n": count, "now": NOW},
            )
    async with engine.begin() as conn:
        for period in Period:
            window = window_for(period, NOW, mode)
            assert await _move(conn, window)
            for limit in (1, 10, 50):
                direct = await _run(conn, baseline.top_users_query(window, limit=limit))
                for tracked in (True, False):
                    top = _rollups(mode).top_users_query(window, limit=limit, tracked=tracked)
                    assert await _run(conn, top) == direct, f"{period} top {limit} tracked={tracked}"
                    summary = _rollups(mode).summary_query(window, tracked=tracked)
                    assert await _run(conn, summary) == await _run(conn, baseline.summary_query(window))


@pytest.mark.parametrize("mode", list(WindowMode))
@pytest.mark.parametrize(
    "shift", [timedelta(minutes=50), timedelta(hours=5), timedelta(days=2), timedelta(days=45)]
)
async def test_kept_windows_move_forward_exactly(
    engine: AsyncEngine, shift: timedelta, mode: WindowMode
) -> None:
    rng = random.Random(3)
    users = list(range(1, 41))
    async with engine.begin() as conn:
        await conn.execute(text(INSERT_USERS), {"n": 40, "at": NOW - timedelta(days=90)})
        await _insert_random(conn, rng, users, 300)
        for period in Period:
            assert await _move(conn, window_for(period, NOW - shift, mode))
        await _insert_random(conn, rng, users, 100)  # kept totals follow the triggers meanwhile
    async with engine.begin() as conn:
        for period in Period:
            window = window_for(period, NOW, mode)
            assert await _move(conn, window)
            tracked = await _run(conn, _rollups(mode).top_users_query(window, limit=15))
            assert tracked == await _run(conn, baseline.top_users_query(window, limit=15)), period
            summary = await _run(conn, _rollups(mode).summary_query(window))
            assert summary == await _run(conn, baseline.summary_query(window)), period
            direct = await _run(conn, baseline.top_spenders_query(window, limit=12))
            assert direct, "the data has answers with costs"
            for tracked in (True, False):
                top = spenders.top_spenders_query(window, limit=12, tracked=tracked)
                assert await _run(conn, top) == direct, f"{period} spenders tracked={tracked}"
            # An older window than the kept one is not tracked: the caller aggregates instead.
            older = window_for(period, NOW - shift, mode)
            if older.start < window.start and truncate(older.start, HOUR) < truncate(window.start, HOUR):
                assert not await _move(conn, older)


@pytest.mark.parametrize("seed", [11, 12])
async def test_dialogs_are_runs_without_a_long_pause(engine: AsyncEngine, seed: int) -> None:
    """Bursts of messages with pauses around the dialog gap, across hour boundaries and window starts;
    then deleting messages splits some runs and merges none."""
    rng = random.Random(seed)
    users = list(range(1, 31))
    async with engine.begin() as conn:
        await conn.execute(text(INSERT_USERS), {"n": 30, "at": NOW - timedelta(days=90)})
        for user_id in users:
            anchor = NOW - rng.choice([timedelta(0), timedelta(hours=23, minutes=50), timedelta(days=7),
                                       timedelta(days=rng.uniform(0, 30))])  # fmt: skip
            moment = anchor - timedelta(minutes=rng.uniform(0, 240))
            for _ in range(rng.randint(1, 25)):
                await conn.execute(
                    text("INSERT INTO messages (user_id, role, content, content_length, created_at)"
                         " VALUES (:u, 'user', 'hi', 2, :at)"),
                    {"u": user_id, "at": moment},
                )  # fmt: skip
                moment += timedelta(minutes=rng.choice([0.5, 5, 20, 29, 31, 45, 70]))
    await _assert_exact(engine)

    async with engine.begin() as conn:
        in_order = "SELECT id FROM messages ORDER BY user_id, created_at"  # repeatable: ids are random
        ids = [r[0] for r in await conn.execute(text(in_order))]
        for message_id in rng.sample(ids, len(ids) // 5):
            await conn.execute(text("UPDATE messages SET deleted_at = :now WHERE id = :id"),
                               {"now": NOW, "id": message_id})  # fmt: skip
    await _assert_exact(engine)

    async with engine.connect() as conn:
        month = window_for(Period.MONTH, NOW, WindowMode.ROLLING)
        query = rolling.recent_dialogs_query(month, limit=30, preview_length=None, dialog_gap=DIALOG_GAP)
        recent = await _run(conn, query)
    assert any(d.message_count > 1 for d in recent)  # runs of several messages were found
    assert any(d.last_message_at - d.first_message_at > DIALOG_GAP for d in recent)  # longer than one gap
