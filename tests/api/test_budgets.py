"""/api/v1/budgets on real PostgreSQL: admins only, what the bot enforces, validation, rate limit, docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.main import create_app
from parley_core.models import ApiUserRole
from parley_core.passwords import hash_password
from parley_core.repositories import api_users
from tests.support.api import make_settings, running_client

PASSWORD = "budget-admin-password-1"
ADMIN = ("boss", PASSWORD)
ANALYST = ("reader", PASSWORD)
USER = 4242


@pytest.fixture
async def accounts(engine: AsyncEngine) -> None:
    """An admin (as an ApiUser with ``role: admin`` makes it) and an analyst."""
    async with engine.begin() as conn:
        for username, role in (("boss", ApiUserRole.ADMIN), ("reader", ApiUserRole.ANALYST)):
            await api_users.upsert_owned(
                conn,
                username=username,
                password_hash=hash_password(PASSWORD, rounds=4),
                is_active=True,
                fingerprint="test",
                role=role,
                owner_namespace="team",
                owner_name=username,
                owner_uid=f"uid-{username}",
            )


@pytest.fixture
async def budgets_client(database_url: str, accounts: None) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        bcrypt_rounds=4,
        budget_tokens_per_day=1000,
        budget_usd_per_month="2.5",
        budgets_api_rate_limit="8/minute",
    )
    async with running_client(create_app(settings)) as client:
        yield client


async def test_an_analyst_may_not_read_or_set_budgets(budgets_client: httpx.AsyncClient) -> None:
    one = f"/api/v1/budgets/{USER}"
    for method, path in (("GET", "/api/v1/budgets"), ("GET", one), ("PUT", one), ("DELETE", one)):
        response = await budgets_client.request(method, path, auth=ANALYST, json={})
        assert response.status_code == 403, (method, path)
        assert response.json() == {"detail": "this endpoint needs an admin account"}
    anonymous = await budgets_client.get(f"/api/v1/budgets/{USER}")
    assert anonymous.status_code == 401


async def test_an_admin_reads_the_defaults_and_what_the_user_spent(
    budgets_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    today = datetime.now(UTC).date()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO usage_counters (user_id, day, tokens, cost_usd, turns)"
                " VALUES (:u, :d, 1000, 0.75, 3)"
            ),
            {"u": USER, "d": today},
        )
    response = await budgets_client.get(f"/api/v1/budgets/{USER}", auth=ADMIN)

    assert response.status_code == 200
    body = response.json()
    assert body["override"] is None
    assert body["defaults"] == body["limits"] == {
        "tokens_per_day": 1000, "tokens_per_month": None, "usd_per_day": None, "usd_per_month": 2.5,
    }  # fmt: skip
    assert body["spending"] == {"day_tokens": 1000, "day_usd": 0.75, "month_tokens": 1000, "month_usd": 0.75}
    day, month = body["meters"]
    assert (day["period"], day["unit"], day["used"], day["left"], day["exhausted"]) == (
        "day",
        "tokens",
        1000,
        0,
        True,
    )
    assert day["resets_at"].startswith(f"{today.fromordinal(today.toordinal() + 1).isoformat()}T00:00:00")
    assert (month["unit"], month["left"], month["exhausted"]) == ("usd", 1.75, False)


async def test_an_admin_overrides_lists_and_removes_a_budget(
    budgets_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    put = await budgets_client.put(
        f"/api/v1/budgets/{USER}", auth=ADMIN, json={"tokens_per_month": 50000, "usd_per_day": 0.125}
    )
    assert put.status_code == 200
    body = put.json()
    assert body["limits"] == {
        "tokens_per_day": 1000, "tokens_per_month": 50000, "usd_per_day": 0.125, "usd_per_month": 2.5,
    }  # fmt: skip
    assert body["override"]["updated_by"] == "api:boss"
    async with engine.connect() as conn:
        [stored] = (await conn.execute(text("SELECT usd_per_day FROM user_budgets"))).all()
    assert stored.usd_per_day == Decimal("0.125000")

    exempt = await budgets_client.put(f"/api/v1/budgets/{USER + 1}", auth=ADMIN, json={"exempt": True})
    assert exempt.json()["exempt"] is True
    assert exempt.json()["meters"] == []
    listed = await budgets_client.get("/api/v1/budgets", params={"limit": 1}, auth=ADMIN)
    assert [item["user_id"] for item in listed.json()["items"]] == [USER]
    assert listed.json()["next_after"] == USER
    rest = await budgets_client.get("/api/v1/budgets", params={"after": USER}, auth=ADMIN)
    assert [item["user_id"] for item in rest.json()["items"]] == [USER + 1]
    assert rest.json()["next_after"] is None

    assert (await budgets_client.delete(f"/api/v1/budgets/{USER}", auth=ADMIN)).status_code == 204
    assert (await budgets_client.delete(f"/api/v1/budgets/{USER}", auth=ADMIN)).status_code == 204
    assert (await budgets_client.get(f"/api/v1/budgets/{USER}", auth=ADMIN)).json()["override"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"tokens_per_day": -1},
        {"tokens_per_day": 1.5},
        {"usd_per_day": "NaN"},
        {"usd_per_day": 0.0000001},
        {"usd_per_month": 1e12},
        {"tokens_per_month": 10**16},
        {"daily": 5},
        [],
    ],
)
async def test_a_bad_override_is_a_422_and_changes_nothing(
    budgets_client: httpx.AsyncClient, engine: AsyncEngine, body: object
) -> None:
    response = await budgets_client.put(f"/api/v1/budgets/{USER}", auth=ADMIN, json=body)
    assert response.status_code == 422
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM user_budgets"))).scalar_one() == 0


@pytest.mark.parametrize("user_id", ["0", "-5", "abc", str(2**63)])
async def test_a_bad_user_id_is_a_422(budgets_client: httpx.AsyncClient, user_id: str) -> None:
    assert (await budgets_client.get(f"/api/v1/budgets/{user_id}", auth=ADMIN)).status_code == 422


async def test_budget_requests_are_rate_limited_per_admin(budgets_client: httpx.AsyncClient) -> None:
    statuses = [
        (await budgets_client.get(f"/api/v1/budgets/{USER}", auth=ADMIN)).status_code for _ in range(9)
    ]
    assert statuses == [200] * 8 + [429]
    assert (await budgets_client.get(f"/api/v1/budgets/{USER}", auth=ANALYST)).status_code == 403


async def test_the_budget_routes_are_documented_with_their_errors(budgets_client: httpx.AsyncClient) -> None:
    schema = (await budgets_client.get("/openapi.json")).json()
    operations = schema["paths"]["/api/v1/budgets/{user_id}"]
    assert set(operations) == {"get", "put", "delete"}
    for operation in operations.values():
        assert {"401", "403", "422", "429", "503"} <= set(operation["responses"])
        assert operation["security"]
    assert "OverrideIn" in schema["components"]["schemas"]


async def test_a_self_registered_account_can_never_be_an_admin(engine: AsyncEngine) -> None:
    with pytest.raises(Exception, match="ck_api_users_admins_come_from_resources"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_users (username, password_hash, source, role)"
                    " VALUES ('x', 'h', 'registration', 'admin')"
                )
            )
