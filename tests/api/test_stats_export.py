"""GET /api/v1/stats/{table}.csv: the JSON's figures as CSV, with its authentication and rate limit."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_api.main import create_app
from tests.api.constants import ANALYST_AUTH as AUTH
from tests.support.api import make_settings, running_client
from tests.support.stats_data import add_analyst, add_message

TABLES = ("summary", "timeline", "recent_dialogs", "top_users", "models", "llm_timeline", "retention",
          "top_spenders")  # fmt: skip


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    await add_analyst(engine)
    now = datetime.now(UTC)
    answer: dict[str, Any] = {"role": "assistant", "prompt_tokens": 10, "completion_tokens": 5}
    await add_message(engine, 1, now - timedelta(minutes=50), '=HYPERLINK("http://evil")')
    await add_message(engine, 1, now - timedelta(minutes=49), "sure", model="m-a", latency_ms=800,
                      cost_usd=Decimal("0.0012"), **answer)  # fmt: skip
    await add_message(engine, 2, now - timedelta(minutes=18), 'a "quoted", two-line\nquestion')
    await add_message(engine, 2, now - timedelta(minutes=19), "ok", model="-m-b", fallback_used=True,
                      latency_ms=1200, **answer)  # fmt: skip
    await add_message(engine, 3, now - timedelta(days=3), "older, in the week only")
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(database_url: str, db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, rate_limit_enabled=False, bcrypt_rounds=4)
    async with running_client(create_app(settings)) as client:
        yield client


def parse(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def cells(record: dict[str, Any]) -> dict[str, str]:
    """A JSON record as its CSV cells read back: None empty, booleans as in JSON, the rest as text."""
    return {key: "" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)
            for key, value in record.items()}  # fmt: skip


@pytest.mark.parametrize("period", ["day", "week"])
async def test_every_table_holds_the_figures_of_the_json(client: httpx.AsyncClient, period: str) -> None:
    body = (await client.get("/api/v1/stats", params={"period": period}, auth=AUTH)).json()
    exports = {
        table: await client.get(f"/api/v1/stats/{table}.csv", params={"period": period}, auth=AUTH)
        for table in TABLES
    }

    for table, response in exports.items():
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = response.headers["content-disposition"]
        assert re.fullmatch(
            rf'attachment; filename="parley-{table}-{period}-rolling-\d{{8}}T\d{{4}}Z\.csv"', disposition
        )
        assert response.text.endswith("\r\n")
    summary = {k: v for k, v in body["summary"].items() if k != "previous"}
    assert parse(exports["summary"]) == [
        cells({"window": "current", "start": body["period_start"], "end": body["period_end"], **summary}),
        cells({"window": "previous", "start": body["previous_start"], "end": body["previous_end"],
               **body["summary"]["previous"]}),
    ]  # fmt: skip
    assert parse(exports["timeline"]) == [cells(p) for p in body["activity_timeline"]]
    assert parse(exports["top_users"]) == [cells(u) for u in body["top_users"]]
    models = parse(exports["models"])
    assert [m["model"] for m in models] == ["'-m-b", "m-a"]  # a leading "-" cannot start a formula
    assert [{**m, "model": ""} for m in models] == [
        cells({**m, "model": ""}) for m in body["llm_usage"]["models"]
    ]
    dialogs = parse(exports["recent_dialogs"])
    assert [{**d, "preview": ""} for d in dialogs] == [
        cells({**d, "preview": ""}) for d in body["recent_dialogs"]
    ]
    previews = {d["user_id"]: d["preview"] for d in dialogs}
    assert previews["2"] == 'a "quoted", two-line\nquestion'  # quoted by the CSV writer, read back whole
    assert previews["1"] == "sure"
    assert len(dialogs) == (3 if period == "week" else 2)
    assert parse(exports["retention"]) == [
        cells({"cohort_start": c["cohort_start"], "users": c["users"],
               **{f"{day}_{k}": v for day in ("d1", "d7", "d30") for k, v in c[day].items()}})
        for c in body["retention"]
    ]  # fmt: skip
    assert len(body["retention"]) == 8
    spenders = parse(exports["top_spenders"])
    assert exports["top_spenders"].text.splitlines()[0] == (
        "user_id,cost_usd,total_messages,exempt,day_tokens_used,day_tokens_limit,day_usd_used,day_usd_limit,"
        "month_tokens_used,month_tokens_limit,month_usd_used,month_usd_limit"
    )
    assert [(r["user_id"], r["cost_usd"]) for r in spenders] == [
        (str(s["user_id"]), str(s["cost_usd"])) for s in body["top_spenders"]
    ]
    llm_timeline = parse(exports["llm_timeline"])
    expected = [cells({**p, "model": ""}) for p in body["llm_timeline"]]
    assert [{**p, "model": ""} for p in llm_timeline] == expected
    assert {p["model"] for p in llm_timeline} == {"'-m-b", "m-a"}


async def test_a_formula_a_user_wrote_is_exported_as_text(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await add_message(db, 4, datetime.now(UTC) - timedelta(minutes=1), "=1+2")

    response = await client.get("/api/v1/stats/recent_dialogs.csv", params={"period": "day"}, auth=AUTH)

    newest = parse(response)[0]
    assert (newest["user_id"], newest["preview"]) == ("4", "'=1+2")


async def test_exports_need_the_same_credentials_and_parameters(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/api/v1/stats/top_users.csv", params={"period": "day"})
    wrong = await client.get(
        "/api/v1/stats/top_users.csv", params={"period": "day"}, auth=("analyst", "nope")
    )
    unknown_table = await client.get("/api/v1/stats/passwords.csv", params={"period": "day"}, auth=AUTH)
    no_period = await client.get("/api/v1/stats/top_users.csv", auth=AUTH)
    extra = await client.get("/api/v1/stats/top_users.csv", params={"period": "day", "limit": "5"}, auth=AUTH)

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert unknown_table.status_code == 422
    assert "top_users" in unknown_table.text  # the allowed tables are named
    assert no_period.status_code == 422
    assert extra.status_code == 422
    assert "unknown query parameter(s): limit" in extra.json()["detail"]


async def test_exports_count_against_the_stats_rate_limit(database_url: str, db: AsyncEngine) -> None:
    settings = make_settings(database_url, stats_api_rate_limit="2/minute", bcrypt_rounds=4)
    async with running_client(create_app(settings)) as client:
        json_first = await client.get("/api/v1/stats", params={"period": "day"}, auth=AUTH)
        csv_second = await client.get("/api/v1/stats/timeline.csv", params={"period": "day"}, auth=AUTH)
        csv_third = await client.get("/api/v1/stats/models.csv", params={"period": "day"}, auth=AUTH)

    assert (json_first.status_code, csv_second.status_code) == (200, 200)
    assert csv_third.status_code == 429
    assert csv_third.json() == {"detail": "Rate limit exceeded: 2 per 1 minute"}
