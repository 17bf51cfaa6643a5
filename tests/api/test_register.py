"""POST /api/v1/auth/register on real PostgreSQL: token, rules, duplicates, the stored hash."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.auth.dependencies import CurrentUserDep
from parley_core.models import ApiUserSource
from parley_core.passwords import MAX_PASSWORD_BYTES, hash_rounds, verify_password
from parley_core.repositories import api_users
from tests.api.constants import ADMIN_TOKEN as TOKEN
from tests.api.constants import REGISTRATION_PASSWORD as PASSWORD
from tests.utils.api_users import TEST_BCRYPT_ROUNDS, create_random_api_user, random_password
from tests.utils.clients import client_from, lifespan_of, security_app

REGISTER = "/api/v1/auth/register"


async def whoami(user: CurrentUserDep) -> dict[str, Any]:
    """A protected route for these tests only."""
    return {"username": user.username}


def registration_app(database_url: str, **overrides: Any) -> FastAPI:
    """An app with registration on (unless overridden) and a protected test route."""
    app = security_app(database_url, **{"admin_registration_token": TOKEN, **overrides})
    app.add_api_route("/test/whoami", whoami)
    return app


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with registration on and a generous registration rate limit."""
    app = registration_app(database_url, registration_rate_limit="100/minute")
    async with lifespan_of(app), client_from(app) as http:
        yield http


def body(username: str = "ana.lyst", password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """A registration body with the admin token."""
    return {"username": username, "password": password, "admin_token": TOKEN, **extra}


async def test_registration_creates_an_account_with_a_bcrypt_hash(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(REGISTER, json=body())

    assert response.status_code == 201
    public = response.json()
    assert set(public) == {"id", "username", "created_at"}
    assert public["username"] == "ana.lyst"
    assert public["created_at"].endswith("Z")
    async with engine.connect() as conn:
        record = await api_users.get_by_username(conn, "ana.lyst")
    assert record is not None
    assert record.id == public["id"]
    assert record.source is ApiUserSource.REGISTRATION
    assert record.is_active
    assert record.password_hash.startswith("$2b$")
    assert "correct horse battery" not in record.password_hash
    assert hash_rounds(record.password_hash) == TEST_BCRYPT_ROUNDS
    assert verify_password("correct horse battery", record.password_hash)


async def test_registered_account_can_log_in(client: httpx.AsyncClient) -> None:
    await client.post(REGISTER, json=body())

    response = await client.get("/test/whoami", auth=("ana.lyst", "correct horse battery"))

    assert response.status_code == 200
    assert response.json() == {"username": "ana.lyst"}


async def test_token_may_come_in_a_header(client: httpx.AsyncClient) -> None:
    payload = {"username": "header.user", "password": random_password()}

    response = await client.post(REGISTER, json=payload, headers={"X-Admin-Token": TOKEN})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (body(admin_token="wrong-token"), {}),
        ({"username": "ana.lyst", "password": "correct horse battery"}, {}),
        (body(admin_token=TOKEN[:-1]), {}),
        (body(admin_token="токен"), {}),
        (body(), {"X-Admin-Token": "wrong-token"}),  # the header wins over the body
    ],
    ids=["wrong", "missing", "prefix", "non-ascii", "header-wins"],
)
async def test_wrong_or_missing_token_is_403(
    client: httpx.AsyncClient, engine: AsyncEngine, payload: dict[str, Any], headers: dict[str, str]
) -> None:
    response = await client.post(REGISTER, json=payload, headers=headers)

    assert response.status_code == 403
    assert response.json() == {"detail": "missing or invalid admin token"}
    async with engine.connect() as conn:
        assert await api_users.get_by_username(conn, "ana.lyst") is None


async def test_rules_are_hidden_from_callers_without_the_token(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json=body(username="BAD NAME", password="short", admin_token="no"))

    assert response.status_code == 403


async def test_duplicate_username_is_400(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    existing = await create_random_api_user(engine)

    response = await client.post(REGISTER, json=body(username=existing.username))

    assert response.status_code == 400
    assert response.json() == {"detail": "username already exists"}


async def test_concurrent_registrations_of_one_name_make_one_account(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.post(REGISTER, json=body()) for _ in range(4)))

    assert sorted(r.status_code for r in responses) == [201, 400, 400, 400]


@pytest.mark.parametrize(
    ("username", "password", "rule", "field"),
    [
        ("Ana", "correct horse battery", "username_invalid", "username"),
        ("ab", "correct horse battery", "username_invalid", "username"),
        ("x" * 65, "correct horse battery", "username_invalid", "username"),
        ("-ana", "correct horse battery", "username_invalid", "username"),
        ("ana'; drop table api_users; --", "correct horse battery", "username_invalid", "username"),
        ("ana.lyst", "short-pw", "password_too_short", "password"),
        ("ana.lyst", "é" * 37, "password_too_long", "password"),
        ("ana.lyst", "x" * (MAX_PASSWORD_BYTES + 1), "password_too_long", "password"),
        ("ana.lyst", "Password1234", "password_too_common", "password"),
        ("ana.lyst.long", "Ana.Lyst.Long", "password_equals_username", "password"),
        ("ana.lyst", "correct\x00horse battery", "password_control_characters", "password"),
        ("ana.lyst", "correct\ud800horse battery", "password_control_characters", "password"),
        ("ana\ud800lyst", "correct horse battery", "username_invalid", "username"),
    ],
)
async def test_weak_or_malformed_accounts_are_422_naming_the_rule(
    client: httpx.AsyncClient, username: str, password: str, rule: str, field: str
) -> None:
    # json.dumps escapes non-ASCII, so even unpaired surrogates travel as JSON escapes (backslash-u d800).
    payload = json.dumps(body(username=username, password=password)).encode("ascii")
    response = await client.post(REGISTER, content=payload, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [(error["type"], error["loc"]) for error in errors] == [(rule, ["body", field])]
    assert errors[0]["msg"]
    assert password not in response.text


async def test_password_of_exactly_72_bytes_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json=body(password="é" * 36))

    assert response.status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "ana.lyst", "admin_token": TOKEN},
        {"username": "ana.lyst", "password": 12345678901234, "admin_token": TOKEN},
        body(role="admin"),
        [1, 2, 3],
    ],
    ids=["missing-password", "number-password", "unknown-field", "not-an-object"],
)
async def test_malformed_bodies_are_422(client: httpx.AsyncClient, payload: Any) -> None:
    response = await client.post(REGISTER, json=payload)

    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"username": "ana.lyst", "password": NaN, "admin_token": "x"}',
        b'{"username": "ana.lyst", "password": "correct horse battery", "extra": Infinity}',
        b"[NaN]",
        b'"correct horse battery"',
    ],
    ids=["invalid", "nan-password", "infinite-extra", "nan-list", "bare-string"],
)
async def test_unusual_json_is_422_and_never_echoed(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(REGISTER, content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert all("input" not in error for error in response.json()["detail"])
    assert "correct horse battery" not in response.text


async def test_registration_is_off_without_a_configured_token(database_url: str) -> None:
    app = registration_app(database_url, admin_registration_token=None)
    async with lifespan_of(app), client_from(app) as client:
        response = await client.post(REGISTER, json=body())
        malformed = await client.post(REGISTER, json={"nonsense": True})

    assert response.status_code == 404
    assert "ADMIN_REGISTRATION_TOKEN" in response.json()["detail"]
    assert malformed.status_code == 404


async def test_registration_is_rate_limited_per_address(database_url: str) -> None:
    app = registration_app(database_url, registration_rate_limit="2/minute")
    async with lifespan_of(app):
        async with client_from(app, "203.0.113.5") as guesser:
            statuses = [
                (await guesser.post(REGISTER, json=body(admin_token=f"guess-{n}"))).status_code
                for n in range(3)
            ]
            limited = await guesser.post(REGISTER, json=body())
        async with client_from(app, "203.0.113.6") as other:
            allowed = await other.post(REGISTER, json=body())

    assert statuses == [403, 403, 429]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Rate limit exceeded: 2 per 1 minute"}
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert allowed.status_code == 201


async def test_secrets_never_reach_the_logs(client: httpx.AsyncClient, log_output: io.StringIO) -> None:
    await client.post(REGISTER, json=body())
    await client.post(REGISTER, json=body(username="second.user", admin_token="a-wrong-admin-token"))

    text = log_output.getvalue()
    assert "api_user_registered" in text
    assert "registration_refused" in text
    for secret in ("correct horse battery", TOKEN, "a-wrong-admin-token"):
        assert secret not in text


async def test_openapi_documents_the_route_and_basic_scheme(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    operation = spec["paths"][REGISTER]["post"]
    assert {"201", "400", "403", "404", "422", "429"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["HTTPBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": "An api_users account (registration or the ApiUser operator), "
        "as HTTP Basic credentials.",
    }
    assert spec["paths"]["/test/whoami"]["get"]["security"] == [{"HTTPBasic": []}]


async def test_a_body_over_the_limit_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    huge = json.dumps(body(padding="x" * 5_000_000))
    declared = await client.post(REGISTER, content=huge, headers={"content-type": "application/json"})

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536].encode()

    streamed = await client.post(REGISTER, content=chunks(), headers={"content-type": "application/json"})
    small = await client.post(REGISTER, json=body())

    assert declared.status_code == streamed.status_code == 413
    assert "larger than 65536 bytes" in declared.json()["detail"]
    assert small.status_code == 201
