"""/health (liveness with details) and /ready (readiness) against real PostgreSQL."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from parley_api.main import create_app
from parley_testing.waiting import eventually
from tests.api.constants import UNREACHABLE_DATABASE_URL as UNREACHABLE
from tests.support.api import make_settings, running_client


async def test_health_reports_database_pool_and_uptime(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "up"
    assert body["uptime_seconds"] >= 0
    assert body["draining"] is False
    assert body["pool"]["size"] == 2
    assert body["pool"]["capacity"] == 4
    assert body["version"]


async def test_ready_when_schema_is_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "up",
        "schema_revision": "at_head",
        "draining": False,
        "reasons": [],
    }


async def test_database_down_fails_readiness_but_not_liveness() -> None:
    app = create_app(make_settings(UNREACHABLE, db_connect_timeout=1, ready_db_timeout_seconds=1))
    async with running_client(app) as client:
        ready = await client.get("/ready")
        health = await client.get("/health")

    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["database unreachable"]
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["database"]["status"] == "down"
    assert "pw" not in health.text


async def test_unmigrated_database_is_not_ready(empty_database_url: str) -> None:
    async with running_client(create_app(make_settings(empty_database_url))) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["schema_revision"] == "missing"
    assert "run the migrations" in response.json()["reasons"][0]


async def test_schema_behind_head_is_not_ready(database_url: str, client: httpx.AsyncClient) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    await engine.dispose()

    response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["schema_revision"] == "behind"


async def test_schema_migrated_by_a_newer_build_stays_ready(
    database_url: str, client: httpx.AsyncClient
) -> None:
    # During a rolling upgrade the pre-upgrade hook has already applied the new build's migrations.
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    await engine.dispose()

    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json()["schema_revision"] == "ahead"


async def test_draining_process_is_not_ready(api_app: FastAPI, client: httpx.AsyncClient) -> None:
    api_app.state.parley.draining = True

    response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["reasons"] == ["shutting down"]
    assert (await client.get("/health")).status_code == 200


async def test_database_errors_in_routes_become_503(api_app: FastAPI) -> None:
    async def broken() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    api_app.add_api_route("/broken", broken)
    async with running_client(api_app) as client:
        response = await client.get("/broken")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "database unavailable, retry later"}


def _sample(metrics_text: str, name: str) -> float:
    """The value of an unlabelled sample in a Prometheus text exposition."""
    [line] = [line for line in metrics_text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def _metrics_showing(client: httpx.AsyncClient, sample: str) -> str:
    """The first /metrics text that contains ``sample``."""

    async def probe() -> str | None:
        body = (await client.get("/metrics")).text
        return body if sample in body else None

    return await eventually(probe, f"{sample!r} in /metrics", timeout=5, interval=0.1)


async def test_database_up_and_ready_gauges_follow_the_database(client: httpx.AsyncClient) -> None:
    """The alerts' own signals: database_up from the background probe, api_ready from /ready."""
    body = await _metrics_showing(client, "database_up 1.0")  # no /ready call yet: only the probe sets it
    assert _sample(body, "database_up") == 1
    assert _sample(body, "api_ready") == 0  # nothing has checked readiness yet
    await client.get("/ready")
    assert _sample((await client.get("/metrics")).text, "api_ready") == 1


async def test_database_down_sets_the_gauges_to_zero() -> None:
    """An unreachable database: the probe reports it before any probe request comes in."""
    app = create_app(make_settings(UNREACHABLE, db_connect_timeout=1, ready_db_timeout_seconds=1))
    async with running_client(app) as client:
        body = await _metrics_showing(client, "database_up 0.0")
        assert _sample(body, "database_up") == 0
        await client.get("/ready")
        assert _sample((await client.get("/metrics")).text, "api_ready") == 0
