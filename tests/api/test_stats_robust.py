"""No content of the tables makes GET /api/v1/stats answer 5xx: a property test over random data.

Each example writes a random history straight into the tables (the rollup triggers run as for the
bot's own writes): messages far in the past, inside every window, a few minutes or days in the future
(a writer whose clock runs ahead), soft-deleted ones, users who have nothing left but deleted messages,
answers with and without a model, empty periods. Every period must answer 200 with a valid body.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.main import create_app
from parley_core.passwords import hash_password
from tests.api.constants import ANALYST_AUTH as AUTH
from tests.api.constants import ANALYST_PASSWORD as PASSWORD
from tests.support.api import make_settings, running_client

_ANALYST_HASH = hash_password(PASSWORD, rounds=4)
OFFSETS_MINUTES = st.one_of(
    st.integers(min_value=-90 * 24 * 60, max_value=-1),  # the past, up to 90 days
    st.integers(min_value=0, max_value=10),  # now, and a clock a few minutes ahead
    st.integers(min_value=60, max_value=3 * 24 * 60),  # hours or days ahead
)
MESSAGE = st.fixed_dictionaries(
    {
        "user": st.integers(min_value=1, max_value=6),
        "minutes": OFFSETS_MINUTES,
        "role": st.sampled_from(["user", "assistant"]),
        "model": st.sampled_from([None, "primary/model", "fallback/model"]),
        "deleted": st.booleans(),
        "length": st.integers(min_value=0, max_value=5000),
        "latency": st.one_of(st.none(), st.integers(min_value=0, max_value=60_000)),
    }
)


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM messages"))
        await conn.execute(text("DELETE FROM users"))
        await conn.execute(text("SELECT stats_rebuild()"))
        await conn.execute(
            text(
                "INSERT INTO api_users (username, password_hash, source)"
                " VALUES ('analyst', :h, 'registration') ON CONFLICT (username) DO NOTHING"
            ),
            {"h": _ANALYST_HASH},
        )


async def _write(
    engine: AsyncEngine, now: datetime, rows: list[dict[str, object]], signups: list[int]
) -> None:
    async with engine.begin() as conn:
        for user in range(1, 7):
            await conn.execute(
                text("INSERT INTO users (id, created_at) VALUES (:u, :at)"),
                {"u": user, "at": now + timedelta(minutes=signups[user - 1])},
            )
        for row in rows:
            at = now + timedelta(minutes=int(row["minutes"]))  # type: ignore[call-overload]
            await conn.execute(
                text(
                    "INSERT INTO messages (id, user_id, role, content, content_length, model, latency_ms,"
                    " fallback_used, created_at, deleted_at)"
                    " VALUES (:id, :u, :role, :c, :len, :model, :lat, :fb, :at, :deleted)"
                ),
                {
                    "id": uuid.uuid4(),
                    "u": row["user"],
                    "role": row["role"],
                    "c": "x" * int(row["length"]),  # type: ignore[call-overload]
                    "len": row["length"],
                    "model": row["model"] if row["role"] == "assistant" else None,
                    "lat": row["latency"] if row["role"] == "assistant" else None,
                    "fb": row["model"] == "fallback/model",
                    "at": at,
                    "deleted": at if row["deleted"] else None,
                },
            )


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(MESSAGE, max_size=25),
    signups=st.lists(st.sampled_from([-100_000, -600, 0, 5, 2000]), min_size=6, max_size=6),
)
async def test_any_table_content_gives_200_for_every_period(
    database_url: str, engine: AsyncEngine, rows: list[dict[str, object]], signups: list[int]
) -> None:
    await _reset(engine)
    await _write(engine, datetime.now(UTC), rows, signups)
    async with running_client(create_app(make_settings(database_url, rate_limit_enabled=False))) as client:
        for period in ("day", "week", "month"):
            response = await client.get(f"/api/v1/stats?period={period}", auth=AUTH)

            assert response.status_code == 200, (period, response.text[:500])
            body = response.json()
            assert all(point["message_count"] >= 0 for point in body["activity_timeline"])
            assert all(user["last_activity"] for user in body["top_users"])
