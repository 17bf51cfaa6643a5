"""HTTP Basic against api_users on real PostgreSQL: 401s, the verification cache, login throttling."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.auth.basic import AuthenticatedUser
from parley_api.auth.cache import VerificationCache
from parley_api.auth.dependencies import CurrentUserDep
from parley_api.auth.header import MAX_CREDENTIALS_CHARS, MalformedCredentialsError, parse_basic
from parley_core import passwords
from parley_core.models import ApiUser
from parley_testing.waiting import eventually
from tests.utils.api_users import (
    RandomApiUser,
    change_password,
    create_random_api_user,
    set_active,
)
from tests.utils.clients import client_from, lifespan_of, security_app

WHOAMI = "/test/whoami"


async def whoami(user: CurrentUserDep) -> dict[str, Any]:
    """A protected route for these tests only."""
    return {"id": user.id, "username": user.username}


def protected_app(database_url: str, **overrides: Any) -> FastAPI:
    """An app with the test-only protected route."""
    app = security_app(database_url, **overrides)
    app.add_api_route(WHOAMI, whoami)
    return app


def basic(raw: bytes) -> dict[str, str]:
    """An Authorization header carrying ``raw`` as the Basic payload."""
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The protected app with its lifespan running."""
    async with lifespan_of(protected_app(database_url)) as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` from 127.0.0.1."""
    async with client_from(app) as http:
        yield http


@pytest.fixture
async def analyst(engine: AsyncEngine) -> RandomApiUser:
    """An active account."""
    return await create_random_api_user(engine)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every bcrypt verification made, by the hash it was checked against."""
    calls: list[str] = []
    real = passwords.verify_password_async

    async def counting(password: str, password_hash: str, **kwargs: Any) -> bool:
        calls.append(password_hash)
        return await real(password, password_hash, **kwargs)

    monkeypatch.setattr(passwords, "verify_password_async", counting)
    return calls


async def test_valid_credentials_authenticate(client: httpx.AsyncClient, analyst: RandomApiUser) -> None:
    response = await client.get(WHOAMI, auth=analyst.auth)

    assert response.status_code == 200
    assert response.json() == {"id": analyst.id, "username": analyst.username}


async def test_utf8_passwords_work(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    user = await create_random_api_user(engine, password="пароль-кириллицей-ü")

    response = await client.get(WHOAMI, headers=basic(f"{user.username}:{user.password}".encode()))

    assert response.status_code == 200


async def test_missing_credentials_are_401_with_basic_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(WHOAMI)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json() == {"detail": "missing Basic credentials"}


async def test_wrong_password_and_unknown_user_look_the_same(
    client: httpx.AsyncClient, analyst: RandomApiUser
) -> None:
    wrong = await client.get(WHOAMI, auth=(analyst.username, "not-the-password"))
    unknown = await client.get(WHOAMI, auth=("nobody-here", analyst.password))

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json() == {"detail": "invalid username or password"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer abc.def.ghi"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b":password-only").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe\xfd:secret").decode()},  # not UTF-8
        {"Authorization": "Basic " + base64.b64encode(b"ali\x00ce:secret").decode()},
        {"Authorization": "Basic " + "QUFB" * 30_000},  # huge header
    ],
    ids=["bearer", "empty", "not-base64", "no-colon", "no-username", "not-utf8", "nul", "huge"],
)
async def test_malformed_credentials_are_401_never_500(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(WHOAMI, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["detail"]


@pytest.mark.parametrize("username", ["' OR '1'='1", "admin'; DROP TABLE api_users; --", "x" * 500, "%", "_"])
async def test_sql_metacharacters_and_long_usernames_are_just_unknown(
    client: httpx.AsyncClient, engine: AsyncEngine, analyst: RandomApiUser, username: str
) -> None:
    response = await client.get(WHOAMI, auth=(username, analyst.password))

    assert response.status_code == 401
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ApiUser)) == 1


async def test_inactive_account_is_refused(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    user = await create_random_api_user(engine, is_active=False)

    response = await client.get(WHOAMI, auth=user.auth)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_repeated_credentials_pay_one_bcrypt(
    client: httpx.AsyncClient, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    for _ in range(5):
        assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200

    assert len(verify_calls) == 1


async def test_wrong_password_is_never_cached(
    client: httpx.AsyncClient, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    await client.get(WHOAMI, auth=analyst.auth)
    for _ in range(2):
        assert (await client.get(WHOAMI, auth=(analyst.username, "wrong-password"))).status_code == 401

    assert len(verify_calls) == 3


async def test_password_change_applies_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, analyst: RandomApiUser
) -> None:
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200  # now cached

    await change_password(engine, analyst.username, "a-brand-new-password")

    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 401
    assert (await client.get(WHOAMI, auth=(analyst.username, "a-brand-new-password"))).status_code == 200


async def test_disable_applies_at_once_and_enable_restores(
    client: httpx.AsyncClient, engine: AsyncEngine, analyst: RandomApiUser
) -> None:
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200  # now cached

    await set_active(engine, analyst.username, active=False)
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 401

    await set_active(engine, analyst.username, active=True)
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200


async def test_deleted_account_is_refused_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, analyst: RandomApiUser
) -> None:
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200  # now cached
    async with engine.begin() as conn:
        await conn.execute(delete(ApiUser))

    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 401


async def test_recreated_account_with_the_same_password_is_a_new_user(
    client: httpx.AsyncClient, engine: AsyncEngine, analyst: RandomApiUser
) -> None:
    assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200  # now cached
    async with engine.begin() as conn:
        await conn.execute(delete(ApiUser))
    again = await create_random_api_user(engine, username=analyst.username, password=analyst.password)

    response = await client.get(WHOAMI, auth=analyst.auth)

    assert response.status_code == 200
    assert response.json()["id"] == again.id != analyst.id


async def test_cache_can_be_turned_off(
    database_url: str, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    async with (
        lifespan_of(protected_app(database_url, auth_cache_ttl_seconds=0)) as app,
        client_from(app) as client,
    ):
        for _ in range(3):
            assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200

    assert len(verify_calls) == 3


async def test_failed_logins_per_username_are_throttled(database_url: str, analyst: RandomApiUser) -> None:
    app = protected_app(database_url, auth_failure_limit_per_username="3/minute")
    async with lifespan_of(app):
        for attempt in range(3):  # each from another address: only the username bucket fills
            async with client_from(app, f"192.0.2.{attempt + 1}") as client:
                assert (await client.get(WHOAMI, auth=(analyst.username, "guess"))).status_code == 401
        async with client_from(app, "192.0.2.99") as client:
            throttled = await client.get(WHOAMI, auth=analyst.auth)  # even the right password
            other = await client.get(WHOAMI, auth=("someone-else", "guess"))

    assert throttled.status_code == 429
    assert throttled.json() == {"detail": "too many failed logins; retry later"}
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert other.status_code == 401


async def test_failed_logins_per_address_are_throttled(database_url: str, analyst: RandomApiUser) -> None:
    app = protected_app(database_url, auth_failure_limit_per_address="3/minute")
    async with lifespan_of(app):
        async with client_from(app, "198.51.100.7") as attacker:
            for attempt in range(3):
                assert (await attacker.get(WHOAMI, auth=(f"name-{attempt}", "guess"))).status_code == 401
            throttled = await attacker.get(WHOAMI, auth=analyst.auth)
        async with client_from(app, "198.51.100.8") as bystander:
            allowed = await bystander.get(WHOAMI, auth=analyst.auth)

    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert allowed.status_code == 200


async def test_forty_parallel_guesses_get_no_more_bcrypt_checks_than_the_budget(
    database_url: str, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    app = protected_app(database_url, auth_failure_limit_per_username="5/minute")
    async with lifespan_of(app), client_from(app) as client:
        statuses = await asyncio.gather(
            *(client.get(WHOAMI, auth=(analyst.username, f"guess-{n}")) for n in range(40))
        )

    assert sorted(response.status_code for response in statuses) == [401] * 5 + [429] * 35
    assert len(verify_calls) == 5  # reserved before bcrypt, not recorded after it


async def test_concurrent_requests_with_one_credential_share_one_bcrypt_check(
    database_url: str, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    app = protected_app(database_url)
    async with lifespan_of(app), client_from(app) as client:
        statuses = await asyncio.gather(*(client.get(WHOAMI, auth=analyst.auth) for _ in range(50)))

    assert [response.status_code for response in statuses] == [200] * 50
    assert len(verify_calls) == 1


async def test_a_used_entry_near_its_end_is_renewed_in_the_background(
    database_url: str, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    app = protected_app(database_url, auth_cache_ttl_seconds=1)
    async with lifespan_of(app), client_from(app) as client:
        assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200  # the one blocking check
        await asyncio.sleep(1.0)  # into the last fifth of the entry's life (0.8-1 s), or just past it
        assert (await client.get(WHOAMI, auth=analyst.auth)).status_code == 200
        # The renewal runs on the bcrypt threads; wait for it, not for a fixed time.
        await eventually(lambda: len(verify_calls) >= 2, "the background renewal", timeout=5, interval=0.05)

    assert len(verify_calls) == 2


async def test_successful_logins_are_not_counted(database_url: str, analyst: RandomApiUser) -> None:
    app = protected_app(database_url, auth_failure_limit_per_username="2/minute")
    async with lifespan_of(app), client_from(app) as client:
        statuses = [(await client.get(WHOAMI, auth=analyst.auth)).status_code for _ in range(5)]

    assert statuses == [200] * 5


async def test_login_throttle_survives_an_unreachable_storage(
    database_url: str, analyst: RandomApiUser
) -> None:
    app = protected_app(
        database_url,
        rate_limit_storage_uri="redis://127.0.0.1:1/0",
        auth_failure_limit_per_username="3/minute",
    )
    async with lifespan_of(app), client_from(app) as client:
        ok = await client.get(WHOAMI, auth=analyst.auth)  # counted, then given back (right password)
        failures = [
            (await client.get(WHOAMI, auth=(analyst.username, "guess"))).status_code for _ in range(4)
        ]

    assert ok.status_code == 200
    assert failures == [401, 401, 401, 429]


async def test_passwords_never_reach_the_logs(
    client: httpx.AsyncClient, analyst: RandomApiUser, log_output: io.StringIO
) -> None:
    await client.get(WHOAMI, auth=analyst.auth)
    await client.get(WHOAMI, auth=(analyst.username, "wrong-secret-guess"))

    text = log_output.getvalue()
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert "auth_failed" in events
    assert analyst.password not in text
    assert "wrong-secret-guess" not in text


def test_parse_basic_reads_utf8_and_colons_in_passwords() -> None:
    raw = base64.b64encode("ana:pa:ss:wörd".encode()).decode()

    credentials = parse_basic(f"basic {raw}")

    assert (credentials.username, credentials.password) == ("ana", "pa:ss:wörd")
    assert "wörd" not in repr(credentials)


def test_parse_basic_refuses_oversized_payloads() -> None:
    with pytest.raises(MalformedCredentialsError):
        parse_basic("Basic " + "A" * (MAX_CREDENTIALS_CHARS + 4))


def test_authenticated_user_is_small_and_frozen() -> None:
    user = AuthenticatedUser(id=1, username="ana")

    with pytest.raises(AttributeError):
        user.username = "bob"  # type: ignore[misc]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_within_the_ttl_spread_out_and_are_renewed_ahead() -> None:
    clock = FakeClock()
    cache = VerificationCache(ttl_seconds=60, max_entries=100, clock=clock)
    keys = [cache.key(f"user-{i}", "secret-password") for i in range(50)]
    for index, key in enumerate(keys):
        cache.put(key, user_id=index, password_hash="$2b$04$hash")
    entries = [cache.get(key) for key in keys]
    assert all(entry is not None for entry in entries)
    lifetimes = sorted(entry.expires_at - clock.now for entry in entries if entry is not None)

    clock.now += 30  # under 80 % of the shortest life (48 s): live, and not yet due for renewal
    fresh = [cache.get(key) for key in keys]
    fresh_due = [entry is not None and cache.due_for_renewal(entry) for entry in fresh]
    clock.now += 31  # past the longest life (60 s)
    expired = [cache.get(key) for key in keys]

    assert 48 <= lifetimes[0] < lifetimes[-1] <= 60  # made together, they do not expire together
    assert all(entry is not None for entry in fresh)
    assert fresh_due == [False] * 50
    assert expired == [None] * 50
    assert len(cache) == 0


def test_an_entry_in_the_last_fifth_of_its_life_is_due_for_renewal() -> None:
    clock = FakeClock()
    cache = VerificationCache(ttl_seconds=60, max_entries=10, clock=clock)
    key = cache.key("ana", "secret-password")
    cache.put(key, user_id=1, password_hash="$2b$04$hash")
    entry = cache.get(key)
    assert entry is not None

    clock.now += (entry.expires_at - clock.now) * 0.81
    assert cache.due_for_renewal(entry)


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = VerificationCache(ttl_seconds=60, max_entries=2)
    first, second, third = (cache.key(name, "pw") for name in ("a", "b", "c"))
    cache.put(first, user_id=1, password_hash="h1")
    cache.put(second, user_id=2, password_hash="h2")
    assert cache.get(first) is not None  # first is now the most recently used
    cache.put(third, user_id=3, password_hash="h3")

    assert cache.get(second) is None
    assert cache.get(first) is not None
    assert cache.get(third) is not None
    assert len(cache) == 2


def test_cache_holds_neither_passwords_nor_hashes() -> None:
    cache = VerificationCache(ttl_seconds=60, max_entries=10)
    key = cache.key("ana", "secret-password")
    cache.put(key, user_id=1, password_hash="$2b$04$abcdefghijklmnopqrstuv")
    entry = cache.get(key)

    dump = repr(vars(cache)) + repr(entry)
    assert "secret-password" not in dump
    assert "abcdefghijklmnopqrstuv" not in dump
    assert entry is not None
    assert cache.matches(entry, user_id=1, password_hash="$2b$04$abcdefghijklmnopqrstuv")
    assert not cache.matches(entry, user_id=1, password_hash="$2b$04$another")
    assert not cache.matches(entry, user_id=2, password_hash="$2b$04$abcdefghijklmnopqrstuv")


def test_cache_keys_differ_per_process() -> None:
    one = VerificationCache(ttl_seconds=60, max_entries=1)
    two = VerificationCache(ttl_seconds=60, max_entries=1)

    assert one.key("ana", "pw") != two.key("ana", "pw")
    assert one.key("ana", "pw") != one.key("ana", "pw2")


async def test_right_passwords_never_use_up_the_username_budget(
    database_url: str, analyst: RandomApiUser, verify_calls: list[str]
) -> None:
    """With every request a bcrypt check (cache off, or one miss per replica), the right password
    gives the username's budget back; wrong ones after it are counted from zero."""
    app = protected_app(database_url, auth_cache_ttl_seconds=0, auth_failure_limit_per_username="2/minute")
    async with lifespan_of(app), client_from(app) as client:
        rights = [(await client.get(WHOAMI, auth=analyst.auth)).status_code for _ in range(6)]
        wrongs = [(await client.get(WHOAMI, auth=(analyst.username, "guess"))).status_code for _ in range(3)]

    assert rights == [200] * 6
    assert len(verify_calls) == 6 + 2
    assert wrongs == [401, 401, 429]
