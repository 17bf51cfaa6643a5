"""parley_operator.reconcile: syncs on real PostgreSQL, ownership, drift and release."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_core.models import ApiUser, ApiUserRole, ApiUserSource
from parley_core.passwords import verify_password
from parley_core.repositories import api_users
from parley_operator.reconcile import row_fingerprint
from parley_operator.status import Reason
from tests.operator.support import PASSWORD, UID, FakeSecrets, reconciler, target
from tests.utils.api_users import create_random_api_user
from tools.localpg import free_port


def alive(*uids: str) -> Any:
    """An owner_alive callback for these uids."""
    return lambda uid: uid in uids


async def test_sync_creates_then_does_nothing_until_the_secret_changes(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)

    created = await sync.sync(target(), owner_alive=alive())
    unchanged = await sync.sync(target(), owner_alive=alive())
    secrets.put("alice-pw", "a-brand-new-password")
    rotated = await sync.sync(target(), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert (created.ready, created.wrote, created.hashed) == (True, True, True)
    assert "row created" in created.message
    assert (unchanged.ready, unchanged.wrote, unchanged.hashed) == (True, False, False)
    assert "row updated" in rotated.message
    assert sync.hasher.calls == 2
    assert row is not None
    assert verify_password("a-brand-new-password", row.password_hash)
    assert row.secret_fingerprint == row_fingerprint(
        "secret:uid-alice-pw@2#password", "alice", row.password_hash
    )


async def test_sync_rehashes_when_the_bcrypt_cost_changes(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    await reconciler(engine, secrets, rounds=4).sync(target(), owner_alive=alive())

    stronger = reconciler(engine, secrets, rounds=5)
    outcome = await stronger.sync(target(), owner_alive=alive())

    assert outcome.hashed
    assert stronger.hasher.calls == 1


async def test_disabling_needs_no_password_source(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    await sync.sync(target(), owner_alive=alive())
    secrets.items.clear()  # the Secret is gone: disabling must still work

    disabled = await sync.sync(target(disabled=True), owner_alive=alive())
    again = await sync.sync(target(disabled=True), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert row is not None
    assert row.is_active is False
    assert (disabled.ready, disabled.wrote, again.wrote) == (True, True, False)


async def test_a_new_disabled_user_is_created_inactive(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)

    outcome = await reconciler(engine, secrets).sync(target(disabled=True), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert outcome.ready
    assert row is not None
    assert row.is_active is False


async def test_ownership_rules(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    await sync.sync(target(), owner_alive=alive())
    other = target(uid="other-uid", name="other")

    live = await sync.sync(other, owner_alive=alive(UID))
    orphan = await sync.sync(other, owner_alive=alive())
    recreated = await sync.sync(target(uid="new-uid"), owner_alive=alive())  # same namespace/name
    adopted = await sync.sync(replace(other, adopt=True), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert (live.reason, orphan.reason) == (Reason.CONFLICT, Reason.CONFLICT)
    assert "already managed by ApiUser ns/alice" in live.message
    assert "no longer exists" in orphan.message
    assert recreated.ready
    assert adopted.ready
    assert "adopted" in adopted.message
    assert row is not None
    assert (row.owner_name, row.owner_uid) == ("other", "other-uid")


async def test_a_registered_account_needs_the_adopt_annotation(engine: AsyncEngine) -> None:
    registered = await create_random_api_user(engine, username="alice", password="registered-password")
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)

    refused = await sync.sync(target(), owner_alive=alive())
    adopted = await sync.sync(target(adopt=True), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert refused.reason == Reason.CONFLICT
    assert adopted.ready
    assert row is not None
    assert (row.id, row.source, row.owner_uid) == (registered.id, ApiUserSource.OPERATOR, UID)


async def test_a_rejected_password_leaves_the_row(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    await sync.sync(target(), owner_alive=alive())
    async with engine.connect() as conn:
        before = await api_users.get_with_owner(conn, "alice")
    secrets.put("alice-pw", "tiny")

    outcome = await sync.sync(target(), owner_alive=alive())

    async with engine.connect() as conn:
        assert await api_users.get_with_owner(conn, "alice") == before
    assert outcome.reason == Reason.PASSWORD_REJECTED
    assert "tiny" not in outcome.message


async def test_drift_in_the_active_flag_is_repaired_without_bcrypt(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    await sync.sync(target(), owner_alive=alive())
    async with engine.begin() as conn:
        await conn.execute(update(ApiUser).where(ApiUser.username == "alice").values(is_active=False))

    outcome = await sync.sync(target(), owner_alive=alive())

    assert (outcome.wrote, outcome.hashed, sync.hasher.calls) == (True, False, 1)


async def test_an_unreachable_database_is_a_temporary_outcome_and_release_raises() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://parley@127.0.0.1:{free_port()}/none")
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    try:
        outcome = await sync.sync(target(), owner_alive=alive())
        with pytest.raises(RuntimeError, match="database is unavailable"):
            await sync.release(username="alice", owner_uid=UID)
    finally:
        await engine.dispose()

    assert (outcome.reason, outcome.temporary) == (Reason.DATABASE_UNAVAILABLE, True)


async def test_release_deletes_only_an_owned_row(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    await sync.sync(target(), owner_alive=alive())

    assert await sync.release(username="alice", owner_uid="someone-else") is False
    assert await sync.release(username="alice", owner_uid=UID) is True
    assert await sync.release(username="alice", owner_uid=UID) is False


async def test_the_role_follows_the_spec_without_re_hashing(engine: AsyncEngine) -> None:
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)
    sync = reconciler(engine, secrets)
    created = await sync.sync(target(role=ApiUserRole.ADMIN), owner_alive=alive())
    demoted = await sync.sync(target(), owner_alive=alive())
    again = await sync.sync(target(), owner_alive=alive())
    disabled_admin = await sync.sync(target(role=ApiUserRole.ADMIN, disabled=True), owner_alive=alive())

    async with engine.connect() as conn:
        row = await api_users.get_with_owner(conn, "alice")
    assert "role admin" in created.message
    assert (demoted.wrote, demoted.hashed) == (True, False)
    assert "given its role" in demoted.message
    assert again.wrote is False
    assert disabled_admin.wrote
    assert row is not None
    assert (row.role, row.is_active) == (ApiUserRole.ADMIN, False)
    assert sync.hasher.calls == 1
