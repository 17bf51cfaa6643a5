"""The operator's `vault {path, key}` password source against a real Vault, logged in as its ServiceAccount.

The operator runs as a process (tests/operator's fixtures) with the chart's Vault settings: Kubernetes auth
with role `parley-operator` and a projected token of ServiceAccount parley/parley-operator, its own
settings from `secret/parley/operator`, ApiUser passwords from `secret/parley/dashboard/*`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.passwords import verify_password
from tests.support.api import StatsLogin, stats_login
from tests.support.operator import Cluster, OperatorProcess, apiuser, row_of, wait_row
from tests.support.vault_server import VaultServer
from tests.vault.support import LogGuard

pytestmark = pytest.mark.kube

T = TypeVar("T")
OPERATOR_PATH = "parley/operator"


@pytest.fixture
async def stats(database_url: str) -> AsyncIterator[StatsLogin]:
    """GET /api/v1/stats with Basic credentials on the test's database -> status code (no auth cache)."""
    async with stats_login(database_url, auth_cache_ttl_seconds=0) as status:
        yield status


@pytest.fixture
def vault_operator(
    vault_server: VaultServer,
    start_operator: Callable[..., OperatorProcess],
    database_url: str,
    tmp_path: Path,
    log_guard: LogGuard,
) -> OperatorProcess:
    """The operator with the chart's Vault settings; even its database URL comes from Vault."""
    db_password = "db-" + secrets.token_urlsafe(18)
    vault_url = make_url(database_url).set(password=db_password).render_as_string(hide_password=False)
    vault_server.put_secret(OPERATOR_PATH, {"database_url": vault_url})
    env = vault_server.kubernetes_env(tmp_path, role="parley-operator", secret_path=OPERATOR_PATH)
    log_guard.watch(db_password, vault_url, Path(env["VAULT_K8S_TOKEN_PATH"]).read_text())
    return start_operator(
        # Not a database anyone listens on: the operator can only work with the URL from Vault.
        "postgresql+asyncpg://parley@127.0.0.1:9/nowhere",
        OPERATOR_RESYNC_SECONDS="5",
        VAULT_RETRIES="2",
        **env,
    )


def _assert_nothing_leaks(
    cluster: Cluster, operator: OperatorProcess, name: str, log_guard: LogGuard, *passwords: str
) -> None:
    log_guard.watch(*passwords)
    log_guard.assert_clean(
        str(cluster.apiuser(name)), str(cluster.events(name)), *operator.log().splitlines()
    )


async def test_vault_source_create_rotate_and_outage(
    vault_server: VaultServer,
    cluster: Cluster,
    *,
    vault_operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
    log_guard: LogGuard,
) -> None:
    path = f"parley/dashboard/{cluster.namespace}-frank"
    first, second = "first-" + secrets.token_urlsafe(16), "second-" + secrets.token_urlsafe(16)
    log_guard.watch(first, second)
    v1 = vault_server.put_secret(path, {"password": first})

    # Create: the row is hashed from version 1 and the login works.
    cluster.apply(apiuser("frank", "frank", vault={"path": path, "key": "password"}))
    condition = cluster.wait_ready("frank", reason="Synced")
    created = await wait_row(engine, "frank", lambda row: verify_password(first, row.password_hash))
    status = (cluster.apiuser("frank") or {})["status"]
    assert status["vaultVersion"] == v1
    assert status["fingerprint"] == f"vault:secret/{path}#password@{v1}"
    assert "row created" in condition["message"]
    assert await stats("frank", first) == 200

    # Rotate: a new KV version means a new hash; the old password is refused from then on.
    v2 = vault_server.put_secret(path, {"password": second})
    rotated = await wait_row(engine, "frank", lambda row: verify_password(second, row.password_hash))
    cluster.wait_ready("frank", reason="Synced")
    assert v2 == v1 + 1
    assert rotated.password_hash != created.password_hash
    assert (cluster.apiuser("frank") or {})["status"]["vaultVersion"] == v2
    assert await stats("frank", second) == 200
    assert await stats("frank", first) == 401

    # Outage: a sealed Vault answers 503 to everything; the row stays exactly as it was.
    hashes_before = vault_operator.hashes()
    with vault_server.sealed():
        condition = cluster.wait_ready("frank", status="False", reason="VaultUnavailable")
        assert "is unavailable reading secret/" in condition["message"]
        assert await row_of(engine, "frank") == rotated
        assert await stats("frank", second) == 200
    # Back: Ready again without re-hashing an unchanged version.
    cluster.wait_ready("frank", reason="Synced")
    assert await row_of(engine, "frank") == rotated
    assert vault_operator.hashes() == hashes_before
    _assert_nothing_leaks(cluster, vault_operator, "frank", log_guard, first, second)


async def test_vault_source_missing_secret_key_and_denied_path(
    vault_server: VaultServer,
    cluster: Cluster,
    vault_operator: OperatorProcess,
    engine: AsyncEngine,
    log_guard: LogGuard,
) -> None:
    path = f"parley/dashboard/{cluster.namespace}-grace"
    outside = f"parley/other/{cluster.namespace}-grace"
    password = "grace-" + secrets.token_urlsafe(16)
    vault_server.put_secret(outside, {"password": password})

    cluster.apply(apiuser("grace", "grace", vault={"path": path, "key": "password"}))
    condition = cluster.wait_ready("grace", status="False", reason="SecretNotFound")
    assert f"has no secret at secret/{path}" in condition["message"]

    vault_server.put_secret(path, {"passwd": password})
    condition = cluster.wait_ready("grace", status="False", reason="KeyNotFound")
    assert f"key 'password' is missing in Vault secret/{path} (version 1)" in condition["message"]

    # The operator's policy covers parley/dashboard/* only: anything else is denied by Vault.
    cluster.apply(apiuser("grace", "grace", vault={"path": outside, "key": "password"}))
    condition = cluster.wait_ready("grace", status="False", reason="VaultAccessDenied")
    assert f"denied reading secret/{outside}: check the policy attached to the role" in condition["message"]
    assert await row_of(engine, "grace") is None

    cluster.apply(apiuser("grace", "grace", vault={"path": path, "key": "passwd"}))
    cluster.wait_ready("grace", reason="Synced")
    await wait_row(engine, "grace", lambda row: verify_password(password, row.password_hash))
    _assert_nothing_leaks(cluster, vault_operator, "grace", log_guard, password)
