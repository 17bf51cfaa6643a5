"""Rate limits (limits, fixed window): JSON 429 with Retry-After, keyed per user or per client address."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from parley_api.auth.dependencies import CurrentUserDep
from parley_api.plumbing.client_address import client_address
from parley_api.state import StateDep
from parley_core.settings import ApiSettings, SettingsError, load_settings
from parley_testing.waiting import wait_for
from tests.api.constants import ADMIN_TOKEN
from tests.utils.api_users import RandomApiUser, create_random_api_user
from tests.utils.clients import client_from, lifespan_of, security_app
from tools.localpg import free_port

LIMITED = "/test/limited"
OPEN = "/test/open"
STATS = "/api/v1/stats"
REGISTER = "/api/v1/auth/register"


async def limit_per_user(request: Request, state: StateDep, user: CurrentUserDep) -> None:
    """STATS_API_RATE_LIMIT for the authenticated user, as the stats route applies it."""
    await state.rate_limiter.check(
        request, state.settings.stats_api_rate_limit, scope=LIMITED, username=user.username
    )


async def limit_per_address(request: Request, state: StateDep) -> None:
    """STATS_API_RATE_LIMIT for the client address, as the registration route applies its limit."""
    await state.rate_limiter.check(request, state.settings.stats_api_rate_limit, scope=OPEN)


async def limited_for_users(user: CurrentUserDep) -> dict[str, Any]:
    """An authenticated route under STATS_API_RATE_LIMIT, for these tests only."""
    return {"username": user.username}


async def limited_for_anyone() -> dict[str, Any]:
    """An unauthenticated route under STATS_API_RATE_LIMIT: keyed by client address."""
    return {"ok": True}


def limited_app(database_url: str, **overrides: Any) -> FastAPI:
    """An app with both test routes; 2 requests per minute unless overridden."""
    app = security_app(database_url, **{"stats_api_rate_limit": "2/minute", **overrides})
    app.add_api_route(LIMITED, limited_for_users, dependencies=[Depends(limit_per_user)])
    app.add_api_route(OPEN, limited_for_anyone, dependencies=[Depends(limit_per_address)])
    return app


@pytest.fixture
async def ana(engine: AsyncEngine) -> RandomApiUser:
    """One analyst."""
    return await create_random_api_user(engine)


@pytest.fixture
async def bob(engine: AsyncEngine) -> RandomApiUser:
    """Another analyst."""
    return await create_random_api_user(engine)


async def test_over_the_limit_is_json_429_with_retry_after(database_url: str, ana: RandomApiUser) -> None:
    app = limited_app(database_url)
    async with lifespan_of(app), client_from(app) as client:
        statuses = [(await client.get(LIMITED, auth=ana.auth)).status_code for _ in range(2)]
        limited = await client.get(LIMITED, auth=ana.auth)

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Rate limit exceeded: 2 per 1 minute"}
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_each_user_has_a_budget_of_their_own(
    database_url: str, ana: RandomApiUser, bob: RandomApiUser
) -> None:
    app = limited_app(database_url)
    async with lifespan_of(app), client_from(app) as client:  # same address for both
        ana_statuses = [(await client.get(LIMITED, auth=ana.auth)).status_code for _ in range(3)]
        bob_statuses = [(await client.get(LIMITED, auth=bob.auth)).status_code for _ in range(3)]

    assert ana_statuses == [200, 200, 429]
    assert bob_statuses == [200, 200, 429]


async def test_a_user_is_limited_from_every_address(database_url: str, ana: RandomApiUser) -> None:
    app = limited_app(database_url)
    statuses = []
    async with lifespan_of(app):
        for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            async with client_from(app, host) as client:
                statuses.append((await client.get(LIMITED, auth=ana.auth)).status_code)

    assert statuses == [200, 200, 429]


async def test_unauthenticated_requests_are_limited_per_address(database_url: str) -> None:
    app = limited_app(database_url)
    async with lifespan_of(app):
        async with client_from(app, "192.0.2.10") as first:
            first_statuses = [(await first.get(OPEN)).status_code for _ in range(3)]
        async with client_from(app, "192.0.2.11") as second:
            second_status = (await second.get(OPEN)).status_code

    assert first_statuses == [200, 200, 429]
    assert second_status == 200


async def test_forwarded_for_is_believed_only_from_trusted_proxies(database_url: str) -> None:
    app = limited_app(database_url, trusted_proxies="10.0.0.0/8")
    async with lifespan_of(app):
        # Through the ingress (10.1.2.3): each real client has its own budget.
        async with client_from(app, "10.1.2.3") as ingress:
            one = [
                (await ingress.get(OPEN, headers={"X-Forwarded-For": "198.51.100.1"})).status_code
                for _ in range(3)
            ]
            two = (await ingress.get(OPEN, headers={"X-Forwarded-For": "198.51.100.2"})).status_code
        # Straight from the internet: a forged header buys no fresh budget.
        async with client_from(app, "203.0.113.9") as direct:
            forged = [
                (await direct.get(OPEN, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
                for n in range(50, 53)
            ]

    assert one == [200, 200, 429]
    assert two == 200
    assert forged == [200, 200, 429]


async def test_rate_limiting_can_be_turned_off(database_url: str, ana: RandomApiUser) -> None:
    app = limited_app(database_url, rate_limit_enabled=False)
    async with lifespan_of(app), client_from(app) as client:
        statuses = {(await client.get(LIMITED, auth=ana.auth)).status_code for _ in range(5)}

    assert statuses == {200}


async def test_ratelimit_environment_variables_change_nothing(
    database_url: str, ana: RandomApiUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Variables some rate-limit libraries read; Parley's settings are the only source.
    for name, value in {"RATELIMIT_ENABLED": "false", "RATELIMIT_HEADERS_ENABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    app = limited_app(database_url)
    async with lifespan_of(app), client_from(app) as client:
        statuses = [(await client.get(LIMITED, auth=ana.auth)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


async def test_every_app_has_its_own_counters(database_url: str) -> None:
    first, second = limited_app(database_url), limited_app(database_url)
    async with lifespan_of(first), lifespan_of(second):
        async with client_from(first) as client:
            exhausted = [(await client.get(OPEN)).status_code for _ in range(3)]
        async with client_from(second) as client:
            fresh = (await client.get(OPEN)).status_code

    assert exhausted == [200, 200, 429]
    assert fresh == 200


async def test_unreachable_storage_falls_back_to_memory(database_url: str) -> None:
    app = limited_app(database_url, rate_limit_storage_uri="redis://127.0.0.1:1/0")
    async with lifespan_of(app), client_from(app) as client:
        statuses = [(await client.get(OPEN)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (skipped where Redis is not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2),
            "redis-server to listen",
            timeout=10,
            interval=0.05,
            retry_on=(OSError,),
        ).close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_replicas_share_budgets_through_redis(
    database_url: str, redis_url: str, ana: RandomApiUser
) -> None:
    # Each replica checks the right password once with bcrypt; a right password gives the username's
    # budget back, so the shared two are left for the guesses that follow.
    settings = {"rate_limit_storage_uri": redis_url, "auth_failure_limit_per_username": "2/minute"}
    replicas = [limited_app(database_url, **settings), limited_app(database_url, **settings)]
    async with lifespan_of(replicas[0]), lifespan_of(replicas[1]):
        clients = [client_from(app) for app in replicas]
        async with clients[0] as one, clients[1] as two:
            limited = [(await http.get(LIMITED, auth=ana.auth)).status_code for http in (one, two, one)]
            failures = [
                (await http.get(LIMITED, auth=(ana.username, "guess"))).status_code
                for http in (two, one, two)
            ]

    assert limited == [200, 200, 429]  # 2/minute for the deployment, not per replica
    assert failures == [401, 401, 429]


async def test_stats_requests_refused_with_401_or_422_cost_no_budget(
    database_url: str, ana: RandomApiUser
) -> None:
    app = limited_app(database_url)
    async with lifespan_of(app), client_from(app) as client:
        wrong_password = (
            await client.get(STATS, params={"period": "day"}, auth=(ana.username, "no"))
        ).status_code
        bad_periods = [
            (await client.get(STATS, params={"period": period}, auth=ana.auth)).status_code
            for period in ("year", "")
        ]
        valid = [
            (await client.get(STATS, params={"period": "day"}, auth=ana.auth)).status_code for _ in range(3)
        ]

    assert wrong_password == 401
    assert bad_periods == [422, 422]
    assert valid == [200, 200, 429]


async def test_malformed_registrations_cost_no_budget(database_url: str) -> None:
    app = limited_app(database_url, admin_registration_token=ADMIN_TOKEN, registration_rate_limit="2/minute")
    async with lifespan_of(app), client_from(app) as client:
        malformed = [(await client.post(REGISTER, json={"username": "x"})).status_code for _ in range(3)]
        guesses = [
            (
                await client.post(
                    REGISTER, json={"username": "ana.lyst", "password": "p", "admin_token": "no"}
                )
            ).status_code
            for _ in range(3)
        ]

    assert malformed == [422, 422, 422]
    assert guesses == [403, 403, 429]


@pytest.mark.parametrize("value", ["10/minute", "100 per hour", "5/second;100/hour", "1 per 2 minutes"])
def test_rate_limit_settings_accept_limits_notation(value: str) -> None:
    assert load_settings(ApiSettings, stats_api_rate_limit=value).stats_api_rate_limit == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stats_api_rate_limit", "ten per minute"),
        ("registration_rate_limit", "5/fortnight"),
        ("auth_failure_limit_per_username", ""),
        ("rate_limit_storage_uri", "mongodb://localhost"),
        ("trusted_proxies", "not-a-network"),
    ],
)
def test_bad_rate_limit_settings_stop_the_process(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name.upper()):
        load_settings(ApiSettings, **{name: value})


def _connection(peer: str | None, forwarded: list[str] | None = None) -> HTTPConnection:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded or []]
    scope: dict[str, Any] = {"type": "http", "headers": headers, "client": (peer, 1) if peer else None}
    return HTTPConnection(scope)


TRUSTED = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.1", ["198.51.100.1"], "203.0.113.1"),  # untrusted peer: header ignored
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["1.1.1.1, 198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # right-most untrusted
        ("10.0.0.1", ["1.1.1.1", "198.51.100.1"], "198.51.100.1"),  # several headers
        ("10.0.0.1", ["garbage, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1, garbage"], "10.0.0.1"),  # the ingress never writes garbage
        ("10.0.0.1", ["10.0.0.9"], "10.0.0.9"),  # every hop trusted: the left-most
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peer
        (None, ["198.51.100.1"], "unknown"),
        ("testclient", ["198.51.100.1"], "testclient"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_address(_connection(peer, forwarded), TRUSTED) == expected


def test_client_address_without_trusted_proxies_is_the_peer() -> None:
    assert client_address(_connection("10.0.0.1", ["198.51.100.1"]), []) == "10.0.0.1"
