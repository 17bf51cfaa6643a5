"""GET /api/v1/stats on real PostgreSQL: contract, figures, privacy, errors, observability."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_api.main import create_app
from tests.api.constants import ANALYST_AUTH as AUTH
from tests.support.api import make_settings, running_client
from tests.support.stats_data import add_analyst as _add_analyst
from tests.support.stats_data import add_message as _add_message

Z_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    await _add_analyst(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def stats_client(database_url: str, db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    # Figures computed on every request: these tests insert rows between requests (the result
    # cache has tests of its own below).
    settings = make_settings(database_url, rate_limit_enabled=False, bcrypt_rounds=4, stats_cache_seconds=0)
    async with running_client(create_app(settings)) as client:
        yield client


async def test_requires_basic_auth(stats_client: httpx.AsyncClient) -> None:
    response = await stats_client.get("/api/v1/stats", params={"period": "day"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "period"),
        ({"period": "year"}, "period"),
        ({"period": "day", "limit": "5"}, "unknown query parameter"),
    ],
)
async def test_bad_parameters_are_422_with_a_reason(
    stats_client: httpx.AsyncClient, params: dict[str, str], reason: str
) -> None:
    response = await stats_client.get("/api/v1/stats", params=params, auth=AUTH)

    assert response.status_code == 422
    assert reason in json.dumps(response.json()["detail"])


async def test_a_repeated_period_is_422_not_the_last_one_silently(stats_client: httpx.AsyncClient) -> None:
    response = await stats_client.get("/api/v1/stats?period=day&period=week", auth=AUTH)

    assert response.status_code == 422
    assert "more than once: period" in response.json()["detail"]


@pytest.mark.parametrize(
    ("period", "window", "points"),
    [("day", "rolling", 25), ("week", "rolling", 8), ("month", "rolling", 31),
     ("day", "calendar", 24), ("week", "calendar", 7), ("month", "calendar", 30)],
)  # fmt: skip
async def test_empty_database_keeps_the_contract(
    stats_client: httpx.AsyncClient, period: str, window: str, points: int
) -> None:
    params = {"period": period} | ({} if window == "rolling" else {"window": window})
    response = await stats_client.get("/api/v1/stats", params=params, auth=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["window"] == window
    assert body["previous_end"] == body["period_start"]
    # A rolling window's first point starts mid-hour and is partial; the current point always is.
    assert [p["partial"] for p in body["activity_timeline"]] == (
        [window == "rolling"] + [False] * (points - 2) + [True]
    )
    assert body["summary"]["total_users"] == body["summary"]["total_messages"] == 0
    assert body["summary"]["active_dialogs"] == 0
    timeline = body["activity_timeline"]
    assert len(timeline) == points
    assert all(p["message_count"] == p["active_users"] == 0 for p in timeline)
    assert [p["timestamp"] for p in timeline] == sorted(p["timestamp"] for p in timeline)
    assert all(Z_TIMESTAMP.match(p["timestamp"]) for p in timeline)
    assert body["recent_dialogs"] == body["top_users"] == []
    assert body["llm_usage"]["models"] == []


async def test_figures_of_a_small_conversation(stats_client: httpx.AsyncClient, db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    await _add_message(db, 1, now - timedelta(minutes=50), "first question")
    await _add_message(db, 1, now - timedelta(minutes=10), "a" * 300, role="assistant", model="m-primary",
                       latency_ms=900, prompt_tokens=10, completion_tokens=20)  # fmt: skip
    await _add_message(db, 2, now - timedelta(minutes=5), "hi")
    await _add_message(db, 2, now - timedelta(minutes=4), "yo", role="assistant", model="m-fallback",
                       fallback_used=True, latency_ms=100, prompt_tokens=5, completion_tokens=5)  # fmt: skip
    await _add_message(db, 3, now - timedelta(days=3), "older, outside the day window")
    await _add_message(db, 3, now - timedelta(hours=30), "previous day window")

    body = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()

    summary = body["summary"]
    assert (summary["total_users"], summary["total_messages"], summary["active_dialogs"]) == (3, 4, 2)
    assert summary["messages_per_active_user"] == 2.0
    assert summary["avg_message_length"] == round((14 + 300 + 2 + 2) / 4, 1)
    assert summary["previous"]["total_messages"] == 1
    assert summary["previous"]["active_dialogs"] == 1
    assert sum(p["message_count"] for p in body["activity_timeline"]) == 4
    assert [d["user_id"] for d in body["recent_dialogs"]] == [2, 1]
    # User 1 paused 40 minutes, longer than the 30-minute dialog gap: the latest dialog is the answer alone.
    assert (body["recent_dialogs"][1]["message_count"], body["recent_dialogs"][1]["duration_minutes"]) == (
        1,
        1,
    )
    # User 2's question and answer, a minute apart, are one dialog.
    assert (body["recent_dialogs"][0]["message_count"], body["recent_dialogs"][0]["duration_minutes"]) == (
        2,
        1,
    )
    assert body["recent_dialogs"][1]["preview"] == "a" * 119 + "…"
    assert body["recent_dialogs"][0]["preview"] == "yo"
    assert [(u["user_id"], u["total_messages"], u["dialog_count"]) for u in body["top_users"]] == [
        (1, 2, 1) if (now - timedelta(minutes=50)).date() == now.date() else (1, 2, 2),
        (2, 2, 1),
    ]
    usage = body["llm_usage"]
    assert (usage["requests"], usage["fallback_count"], usage["fallback_share"]) == (2, 1, 0.5)
    by_model = {m["model"]: m for m in usage["models"]}
    assert by_model["m-primary"]["total_tokens"] == 30
    assert by_model["m-primary"]["avg_latency_ms"] == 900.0
    # One answer of 900 ms: every percentile is the upper end of its bin, [882.0, 970.2) ms.
    primary = by_model["m-primary"]
    assert (primary["latency_p50_ms"], primary["latency_p95_ms"], primary["latency_p99_ms"]) == (970.2,) * 3
    assert by_model["m-fallback"]["latency_p99_ms"] == 108.3  # 100 ms lies in [98.5, 108.3)
    assert by_model["m-fallback"]["fallback_share"] == 1.0
    assert (by_model["m-fallback"]["answer_share"], by_model["m-primary"]["answer_share"]) == (0.5, 0.5)

    week = (await stats_client.get("/api/v1/stats", params={"period": "week"}, auth=AUTH)).json()
    assert week["summary"]["total_messages"] == 6
    assert week["summary"]["active_dialogs"] == 3


async def test_costs_per_model_and_per_user(stats_client: httpx.AsyncClient, db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    answer: dict[str, Any] = {"role": "assistant", "prompt_tokens": 10, "completion_tokens": 20}
    await _add_message(db, 1, now - timedelta(minutes=30), model="m-a", cost_usd=Decimal("0.0012"), **answer)
    await _add_message(db, 1, now - timedelta(minutes=20), model="m-a", cost_usd=Decimal("0.0003"), **answer)
    await _add_message(db, 1, now - timedelta(minutes=15), model="m-a", **answer)  # a cost nobody knew
    await _add_message(db, 2, now - timedelta(minutes=10), model="m-b", cost_usd=Decimal("0.02"), **answer)
    await _add_message(db, 2, now - timedelta(minutes=9), "and a question")
    await _add_message(db, 3, now - timedelta(days=3), model="m-b", cost_usd=Decimal("5"), **answer)  # older

    body = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()

    usage = body["llm_usage"]
    assert usage["cost_usd"] == 0.0215
    by_model = {m["model"]: (m["requests"], m["priced_requests"], m["cost_usd"]) for m in usage["models"]}
    assert by_model == {"m-a": (3, 2, 0.0015), "m-b": (1, 1, 0.02)}
    by_user = {u["user_id"]: u["cost_usd"] for u in body["top_users"]}
    assert by_user == {1: 0.0015, 2: 0.02}

    # A soft-deleted answer (/reset) leaves the figures, its cost too.
    async with db.begin() as conn:
        await conn.execute(text("UPDATE messages SET deleted_at = now() WHERE user_id = 2"))
    body = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
    assert body["llm_usage"]["cost_usd"] == 0.0015
    assert [(u["user_id"], u["cost_usd"]) for u in body["top_users"]] == [(1, 0.0015)]


async def test_a_new_message_counts_at_once(stats_client: httpx.AsyncClient, db: AsyncEngine) -> None:
    before = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
    await _add_message(db, 42, datetime.now(UTC))
    after = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()

    assert after["summary"]["total_messages"] == before["summary"]["total_messages"] + 1
    assert after["recent_dialogs"][0]["user_id"] == 42


async def test_a_new_message_counts_within_the_cache_window(database_url: str, db: AsyncEngine) -> None:
    """With the default result cache a new message shows once the period's figures are a window old."""
    settings = make_settings(database_url, rate_limit_enabled=False, bcrypt_rounds=4, stats_cache_seconds=0.3)
    async with running_client(create_app(settings)) as client:
        before = (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
        await _add_message(db, 42, datetime.now(UTC))
        cached = (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
        await asyncio.sleep(0.35)
        after = (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()

    assert cached == before  # within the window: the same figures, generated_at included
    assert after["summary"]["total_messages"] == before["summary"]["total_messages"] + 1


async def test_concurrent_dashboards_share_one_computation(database_url: str, db: AsyncEngine) -> None:
    """Twenty simultaneous requests for a period run its queries once; another period is its own."""
    settings = make_settings(database_url, rate_limit_enabled=False, bcrypt_rounds=4, stats_cache_seconds=5)
    async with running_client(create_app(settings)) as client:
        await client.get("/api/v1/stats", params={"period": "week"}, auth=AUTH)  # warms the auth cache
        responses = await asyncio.gather(
            *(client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH) for _ in range(20))
        )
        metrics = (await client.get("/metrics")).text

    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["generated_at"] for response in responses}) == 1
    summaries = [
        line
        for line in metrics.splitlines()
        if line.startswith("database_query_duration_seconds_count") and 'query_name="summary"' in line
    ]
    assert summaries
    assert float(summaries[0].split()[-1]) == 2  # one for week, one for the 20 day requests
    assert 'stats_api_requests_total{period="day",status="ok"} 20.0' in metrics


async def test_previews_can_be_turned_off(database_url: str, db: AsyncEngine) -> None:
    await _add_message(db, 7, datetime.now(UTC), "private words")
    app = create_app(make_settings(database_url, stats_previews_enabled=False, bcrypt_rounds=4))
    async with running_client(app) as client:
        body = (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()

    assert body["previews_enabled"] is False
    assert body["recent_dialogs"][0]["preview"] is None
    assert "private words" not in json.dumps(body)


async def test_slow_query_is_logged_as_warning(
    database_url: str, db: AsyncEngine, log_output: io.StringIO
) -> None:
    app = create_app(make_settings(database_url, slow_query_seconds=0.2, bcrypt_rounds=4))
    async with running_client(app) as client:
        # Warm the auth cache with another period: "day" must be computed (not reused) below.
        await client.get("/api/v1/stats", params={"period": "week"}, auth=AUTH)
        async with db.connect() as blocker:
            # Hold a lock the llm_usage query must wait for: a genuinely slow query.
            await blocker.execute(text("LOCK TABLE stats_model_buckets IN ACCESS EXCLUSIVE MODE"))
            request = asyncio.create_task(client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH))
            await asyncio.sleep(0.4)
            await blocker.rollback()
        response = await request

    assert response.status_code == 200
    events = [json.loads(line) for line in log_output.getvalue().splitlines()]
    slow = [e for e in events if e["event"] == "slow_query"]
    assert [e["query_name"] for e in slow] == ["llm_usage"]
    assert slow[0]["level"] == "warning"
    assert slow[0]["period"] == "day"
    assert slow[0]["user"] == "analyst"
    assert slow[0]["elapsed_ms"] >= 200
    timed = {e["query_name"] for e in events if e["event"] == "query_timed"}
    assert {"summary", "activity", "recent_dialogs", "top_users"} <= timed


@pytest.mark.parametrize("enabled", [True, False])
async def test_query_analysis_logs_plans_only_when_enabled(
    database_url: str, db: AsyncEngine, log_output: io.StringIO, enabled: bool
) -> None:
    app = create_app(make_settings(database_url, enable_query_analysis=enabled, bcrypt_rounds=4))
    async with running_client(app) as client:
        response = await client.get("/api/v1/stats", params={"period": "week"}, auth=AUTH)

    assert response.status_code == 200
    plans = [json.loads(line) for line in log_output.getvalue().splitlines() if "query_plan" in line]
    if enabled:
        assert {p["query_name"] for p in plans} == {"move_windows", "summary", "activity", "recent_dialogs",
                                                    "top_users", "llm_usage", "move_audience",
                                                    "audience", "llm_latency", "llm_timeline",
                                                    "retention", "top_spenders"}  # fmt: skip
        assert all("Execution Time" in p["plan"] for p in plans)
    else:
        assert plans == []


async def test_metrics_are_exported(stats_client: httpx.AsyncClient) -> None:
    await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)
    await stats_client.get("/health")

    body = (await stats_client.get("/metrics")).text

    assert 'database_query_duration_seconds_bucket{le="0.0005",query_name="summary"}' in body
    assert 'stats_api_requests_total{period="day",status="ok"} 1.0' in body
    assert "database_connection_pool_size 4.0" in body
    assert "database_connection_pool_available" in body
    assert 'http_requests_total{handler="/api/v1/stats",method="GET",status="200"}' in body
    assert 'handler="/health"' not in body
    assert 'handler="/metrics"' not in body


async def test_database_down_is_a_clear_503(database_url: str) -> None:
    app = create_app(make_settings("postgresql://x:y@127.0.0.1:9/none", db_connect_timeout=1))
    async with running_client(app) as client:
        response = await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)

    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable, retry later"}
    assert "Traceback" not in response.text


async def test_exhausted_pool_waits_then_answers_503(database_url: str, db: AsyncEngine) -> None:
    settings = make_settings(database_url, bcrypt_rounds=4, db_pool_timeout=0.5)
    settings = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    app = create_app(settings)
    async with running_client(app) as client:
        assert (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).status_code == 200
        async with app.state.parley.engine.connect():  # the only connection is taken
            response = await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_rolling_and_calendar_windows_compare_equal_lengths(
    stats_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    inside = now - timedelta(days=7) + timedelta(minutes=2)  # in the last 7 x 24 h, a day before calendar's
    before = now - timedelta(days=7) - timedelta(minutes=2)  # in the 7 x 24 h before
    ahead = now + timedelta(minutes=5)  # a writer whose clock runs ahead
    for moment in (inside, before, ahead):
        await _add_message(db, 1, moment, "hello")

    rolling = (await stats_client.get("/api/v1/stats", params={"period": "week"}, auth=AUTH)).json()
    calendar = (
        await stats_client.get("/api/v1/stats", params={"period": "week", "window": "calendar"}, auth=AUTH)
    ).json()

    assert rolling["window"] == "rolling"
    start, end = _instant(rolling["period_start"]), _instant(rolling["period_end"])
    assert end - start == timedelta(days=7)
    assert _instant(rolling["generated_at"]) - end < timedelta(seconds=1)  # the window ends now
    assert (rolling["previous_end"], _instant(rolling["previous_start"])) == (
        rolling["period_start"],
        start - (end - start),
    )
    assert rolling["summary"]["total_messages"] == 2  # inside, and ahead counted as now
    assert rolling["summary"]["previous"]["total_messages"] == 1
    timeline = rolling["activity_timeline"]
    assert [p["partial"] for p in timeline] == [True] + [False] * 6 + [True]
    assert timeline[0]["timestamp"] == rolling["period_start"]
    assert (timeline[0]["message_count"], timeline[-1]["message_count"]) == (1, 1)

    c_start, c_end = _instant(calendar["period_start"]), _instant(calendar["period_end"])
    assert (c_start.time(), c_end - c_start) == (datetime.min.time(), timedelta(days=7))
    assert calendar["summary"]["total_messages"] == 1 + (inside >= c_start)
    assert _instant(calendar["previous_start"]) == c_start - timedelta(days=7)
    assert calendar["summary"]["previous"]["total_messages"] == (inside < c_start) + (
        before >= c_start - timedelta(days=7)
    )
    assert calendar["activity_timeline"][-1] == {
        "timestamp": calendar["activity_timeline"][-1]["timestamp"], "message_count": 1, "active_users": 1,
        "partial": True,
    }  # fmt: skip


async def test_an_unknown_window_is_refused(stats_client: httpx.AsyncClient) -> None:
    response = await stats_client.get(
        "/api/v1/stats", params={"period": "day", "window": "fiscal"}, auth=AUTH
    )

    assert response.status_code == 422
    assert "rolling" in response.text
    assert "calendar" in response.text


async def test_a_dialog_ends_at_a_pause_longer_than_the_setting(database_url: str, db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    for minutes in (100, 80, 58, 40, 30):  # pauses of 20, 22, 18 and 10 minutes
        await _add_message(db, 7, now - timedelta(minutes=minutes), "hi")

    async def latest_dialog(gap_minutes: int) -> tuple[int, int]:
        settings = make_settings(database_url, stats_dialog_gap_minutes=gap_minutes, bcrypt_rounds=4)
        async with running_client(create_app(settings)) as client:
            body = (await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
        dialog = body["recent_dialogs"][0]
        return dialog["message_count"], dialog["duration_minutes"]

    assert await latest_dialog(30) == (5, 70)
    assert await latest_dialog(21) == (3, 28)
    assert await latest_dialog(15) == (2, 10)


async def test_audience_counts_daily_weekly_and_monthly_users_whatever_the_period(
    stats_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    await _add_message(db, 1, now - timedelta(hours=2), "today")
    await _add_message(db, 1, now - timedelta(days=20), "and this month")
    await _add_message(db, 2, now - timedelta(days=3), "this week")
    await _add_message(db, 3, now - timedelta(days=29, hours=23), "this month")
    await _add_message(db, 4, now - timedelta(days=31), "last month")

    for params in ({"period": "day"}, {"period": "month", "window": "calendar"}):
        body = (await stats_client.get("/api/v1/stats", params=params, auth=AUTH)).json()
        assert body["audience"] == {
            "daily_active_users": 1, "weekly_active_users": 2, "monthly_active_users": 3,
            "stickiness": 0.3333,
        }  # fmt: skip


async def test_retention_follows_signup_weeks_whatever_the_period(
    stats_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    # Each user is created a day before their first message (tests.support.stats_data): that is day 1.
    await _add_message(db, 1, now - timedelta(days=10), "day 1")
    await _add_message(db, 1, now - timedelta(days=4), "day 7")
    await _add_message(db, 2, now - timedelta(days=9), "day 1, not back on day 7")

    for params in ({"period": "day"}, {"period": "week", "window": "calendar"}):
        cohorts = (await stats_client.get("/api/v1/stats", params=params, auth=AUTH)).json()["retention"]
        starts = [datetime.fromisoformat(c["cohort_start"]) for c in cohorts]
        assert len(starts) == 8
        assert all(s.weekday() == 0 and s.hour == 0 for s in starts)
        assert starts == sorted(starts)
        assert starts[-1] <= now < starts[-1] + timedelta(days=7)

        def total(day: str, field: str) -> int:
            return sum(c[day][field] for c in cohorts)  # noqa: B023

        assert sum(c["users"] for c in cohorts) == 2
        assert (total("d1", "eligible_users"), total("d1", "retained_users")) == (2, 2)
        assert (total("d7", "eligible_users"), total("d7", "retained_users")) == (2, 1)
        assert (total("d30", "eligible_users"), total("d30", "retained_users")) == (0, 0)
        for cohort in cohorts:
            for day in ("d1", "d7", "d30"):
                figures = cohort[day]
                expected = (
                    figures["retained_users"] / figures["eligible_users"]
                    if figures["eligible_users"]
                    else None
                )
                assert figures["rate"] == expected


async def test_stopped_and_retried_answers_count_per_model(
    stats_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    for minutes in (30, 20, 10):
        await _add_message(db, 1, now - timedelta(minutes=minutes), f"answer {minutes}", role="assistant",
                           model="m-primary")  # fmt: skip
    async with db.begin() as conn:  # the bot sets both flags after storing the answer
        await conn.execute(text("UPDATE messages SET stopped = true WHERE content = 'answer 30'"))
        await conn.execute(text("UPDATE messages SET replaced = true WHERE content <> 'answer 10'"))

    usage = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()["llm_usage"]
    assert (usage["stopped_count"], usage["retried_count"]) == (1, 2)
    (model,) = usage["models"]
    assert (model["requests"], model["stopped_count"], model["retried_count"]) == (3, 1, 2)

    async with db.begin() as conn:
        await conn.execute(text("UPDATE messages SET deleted_at = now() WHERE content = 'answer 30'"))
    usage = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()["llm_usage"]
    assert (usage["requests"], usage["stopped_count"], usage["retried_count"]) == (2, 0, 1)


async def test_top_spenders_show_what_they_cost_and_their_budget_now(
    stats_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    for user_id, cost, minutes in ((1, "0.5", 30), (1, "0.25", 20), (2, "1.0", 10), (3, None, 5)):
        await _add_message(db, user_id, now - timedelta(minutes=minutes), "answer", role="assistant",
                           model="m-primary", cost_usd=Decimal(cost) if cost else None)  # fmt: skip
    ledger = "INSERT INTO usage_counters (user_id, day, tokens, cost_usd, turns) VALUES (2, :d, 100, 1.5, 2)"
    async with db.begin() as conn:  # the budget ledger and an override for user 2
        await conn.execute(text(ledger), {"d": now.date()})
        await conn.execute(text("INSERT INTO user_budgets (user_id, usd_per_day) VALUES (2, 4)"))

    body = (await stats_client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)).json()
    spenders = body["top_spenders"]
    assert [(s["user_id"], s["cost_usd"], s["total_messages"]) for s in spenders] == [
        (2, 1.0, 1),
        (1, 0.75, 2),
    ]  # user 3's answer has no cost: not a spender
    (meter,) = spenders[0]["meters"]
    assert (meter["period"], meter["unit"], meter["used"], meter["limit"], meter["left"]) == (
        "day", "usd", 1.5, 4.0, 2.5,
    )  # fmt: skip
    assert spenders[1]["meters"] == []  # no default limits in these settings
    assert not spenders[1]["exempt"]
