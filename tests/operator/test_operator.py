"""The operator as a real process against the real kube-apiserver and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_core import schema
from parley_core.models import ApiUser, ApiUserSource
from parley_core.passwords import verify_password
from parley_testing.kube import SA_ISSUER
from parley_testing.waiting import eventually
from tests.support.api import StatsLogin, stats_login
from tests.support.operator import DEADLINE, Cluster, OperatorProcess, apiuser, row_of, secret, wait_row
from tests.support.operator_log import refusals
from tests.utils.api_users import create_random_api_user
from tools.localpg import LocalPostgres, throwaway_postgres

pytestmark = pytest.mark.kube

T = TypeVar("T")
ALICE_PW = "correct-horse-battery-staple"
ALICE_PW2 = "rotated-horse-battery-staple"
RBAC = Path(__file__).resolve().parents[2] / "manifests" / "operator-rbac.yaml"


@pytest.fixture
async def stats(database_url: str) -> AsyncIterator[StatsLogin]:
    """GET /api/v1/stats?period=day with Basic credentials on the test's database -> status code."""
    async with stats_login(database_url) as status:
        yield status


def _assert_no_password(cluster: Cluster, operator: OperatorProcess, name: str, *passwords: str) -> None:
    body = str(cluster.apiuser(name)) + str(cluster.events(name)) + operator.log()
    for password in passwords:
        assert password not in body


async def test_apply_creates_a_hashed_row_and_the_stats_api_accepts_the_login(
    cluster: Cluster,
    operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))

    condition = cluster.wait_ready("alice", reason="Synced")
    row = await wait_row(engine, "alice")
    body = cluster.apiuser("alice")
    assert body is not None

    assert verify_password(ALICE_PW, row.password_hash)
    assert row.password_hash.startswith("$2b$04$")
    assert (row.source, row.is_active) == (ApiUserSource.OPERATOR, True)
    assert (row.owner_namespace, row.owner_name, row.owner_uid) == (
        cluster.namespace,
        "alice",
        body["metadata"]["uid"],
    )
    assert body["metadata"]["finalizers"] == ["parley.dev/finalizer"]
    status = body["status"]
    assert status["fingerprint"].startswith("secret:")
    assert status["secretResourceVersion"]
    assert status["lastSyncTime"].endswith("Z")
    assert "row created" in condition["message"]
    assert await stats("alice", ALICE_PW) == 200
    assert await stats("alice", "wrong-password-for-alice") == 401
    assert any(event["reason"] == "Synced" for event in cluster.events("alice"))
    printed = cluster.kubectl("get", "apiu", "alice").stdout
    assert "USERNAME" in printed
    assert "Synced" in printed
    _assert_no_password(cluster, operator, "alice", ALICE_PW)


async def test_rotating_the_secret_makes_the_new_password_work_and_the_old_fail(
    cluster: Cluster,
    operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    first = await wait_row(engine, "alice")

    cluster.apply(secret("alice-password", ALICE_PW2))
    rotated = await wait_row(engine, "alice", lambda row: row.password_hash != first.password_hash)

    assert verify_password(ALICE_PW2, rotated.password_hash)
    assert await stats("alice", ALICE_PW2) == 200
    assert await stats("alice", ALICE_PW) == 401
    body = cluster.apiuser("alice") or {}
    assert body["metadata"]["annotations"]["parley.dev/secret-version"].endswith(
        "/" + body["status"]["secretResourceVersion"]
    )
    _assert_no_password(cluster, operator, "alice", ALICE_PW, ALICE_PW2)


async def test_disabled_refuses_the_login_and_enabling_restores_it(
    cluster: Cluster,
    operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    await wait_row(engine, "alice")
    hashes = operator.hashes()

    cluster.apply(apiuser("alice", "alice", disabled=True))
    await wait_row(engine, "alice", lambda row: not row.is_active)
    condition = cluster.wait_ready("alice")
    assert "disabled" in condition["message"]
    assert await stats("alice", ALICE_PW) == 401

    cluster.apply(apiuser("alice", "alice", disabled=False))
    await wait_row(engine, "alice", lambda row: row.is_active)
    assert await stats("alice", ALICE_PW) == 200
    assert operator.hashes() == hashes  # toggling the flag never re-hashes


async def test_an_admin_apiuser_becomes_an_admin_row_and_the_api_server_refuses_unknown_roles(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice", role="admin"))
    condition = cluster.wait_ready("alice")
    await wait_row(engine, "alice", lambda row: row.role == "admin")
    assert "role admin" in condition["message"]
    hashes = operator.hashes()
    assert (await row_of(engine, "alice")) is not None

    cluster.apply(apiuser("alice", "alice"))  # role left out: the CRD's default, analyst
    await wait_row(engine, "alice", lambda row: row.role == "analyst")
    assert operator.hashes() == hashes  # a role change never re-hashes

    refused = cluster.apply(secret("bob-password", ALICE_PW), apiuser("bob", "bob", role="root"), check=False)
    assert refused.returncode != 0
    assert "Unsupported value" in refused.stderr


async def test_delete_removes_the_row_and_the_finalizer(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    await wait_row(engine, "alice")

    cluster.kubectl("delete", "apiuser", "alice", "--wait=false")

    async def row_gone() -> bool:
        return await row_of(engine, "alice") is None

    await eventually(row_gone, "the row to be deleted", timeout=DEADLINE)
    await eventually(lambda: cluster.apiuser("alice") is None, "the ApiUser to disappear", timeout=DEADLINE)


async def test_a_second_apiuser_for_the_same_username_gets_conflict_and_never_overwrites(
    cluster: Cluster,
    operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    owned = await wait_row(engine, "alice")

    cluster.apply(secret("intruder-password", "intruder-password-long"), apiuser("intruder", "alice"))
    condition = cluster.wait_ready("intruder", status="False", reason="Conflict")

    assert f"managed by ApiUser {cluster.namespace}/alice" in condition["message"]
    assert await row_of(engine, "alice") == owned
    assert await stats("alice", ALICE_PW) == 200
    assert any(event["reason"] == "Conflict" for event in cluster.events("intruder"))

    # Deleting the intruder must not delete alice's row.
    cluster.kubectl("delete", "apiuser", "intruder")
    assert await row_of(engine, "alice") == owned


async def test_when_the_owner_goes_the_waiting_apiuser_takes_the_username_on_resync(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    cluster.apply(secret("second-password", ALICE_PW2), apiuser("second", "alice"))
    cluster.wait_ready("second", status="False", reason="Conflict")

    cluster.kubectl("delete", "apiuser", "alice")

    cluster.wait_ready("second", reason="Synced")
    row = await wait_row(engine, "alice", lambda row: row.owner_name == "second")
    assert verify_password(ALICE_PW2, row.password_hash)


async def test_a_registered_account_is_adopted_only_with_the_annotation(
    cluster: Cluster,
    operator: OperatorProcess,
    engine: AsyncEngine,
    stats: StatsLogin,
) -> None:
    registered = await create_random_api_user(engine, username="bob", password="registered-password-1")
    before = await row_of(engine, "bob")
    cluster.apply(secret("bob-password", "operator-password-1"), apiuser("bob", "bob"))

    condition = cluster.wait_ready("bob", status="False", reason="Conflict")
    assert "registration" in condition["message"]
    assert "parley.dev/adopt" in condition["message"]
    assert await row_of(engine, "bob") == before
    assert await stats("bob", registered.password) == 200

    cluster.kubectl("annotate", "apiuser", "bob", "parley.dev/adopt=true")

    cluster.wait_ready("bob", reason="Synced")
    row = await wait_row(engine, "bob", lambda row: row.source == ApiUserSource.OPERATOR)
    assert row.id == registered.id
    assert verify_password("operator-password-1", row.password_hash)
    assert await stats("bob", "operator-password-1") == 200
    assert await stats("bob", registered.password) == 401


async def test_drift_is_repaired_on_the_next_resync(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.wait_ready("alice")
    await wait_row(engine, "alice")

    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM api_users WHERE username = 'alice'"))
    recreated = await wait_row(engine, "alice")
    assert verify_password(ALICE_PW, recreated.password_hash)

    async with engine.begin() as conn:
        await conn.execute(
            update(ApiUser)
            .where(ApiUser.username == "alice")
            .values(password_hash=recreated.password_hash.replace("$04$", "$04$x", 1)[:60], is_active=False)
        )
    repaired = await wait_row(
        engine, "alice", lambda row: row.is_active and verify_password(ALICE_PW, row.password_hash)
    )
    assert repaired.owner_name == "alice"
    assert operator.metric("parley_operator_reconciles_total", trigger="timer", result="changed") >= 2


async def test_missing_secret_key_and_weak_password_are_reported_and_leave_the_row(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(apiuser("alice", "alice"))
    condition = cluster.wait_ready("alice", status="False", reason="SecretNotFound")
    assert f"Secret {cluster.namespace}/alice-password does not exist" in condition["message"]

    cluster.apply(secret("alice-password", ALICE_PW, key="other"))
    condition = cluster.wait_ready("alice", status="False", reason="KeyNotFound")
    assert "no key 'password'" in condition["message"]
    assert "other" in condition["message"]
    assert await row_of(engine, "alice") is None

    cluster.apply(secret("alice-password", ALICE_PW))
    cluster.wait_ready("alice", reason="Synced")
    good = await wait_row(engine, "alice")

    cluster.apply(secret("alice-password", "Zq9x!kv"))
    condition = cluster.wait_ready("alice", status="False", reason="PasswordRejected")
    assert "shorter than 12" in condition["message"]
    cluster.apply(secret("alice-password", ALICE_PW + "\n"))
    condition = cluster.wait_ready("alice", status="False", reason="PasswordRejected")
    assert "--from-file" in condition["message"]
    cluster.kubectl("delete", "secret", "alice-password")
    cluster.wait_ready("alice", status="False", reason="SecretNotFound")
    assert await row_of(engine, "alice") == good  # a missing Secret never clears the row
    assert any(e["type"] == "Warning" and e["reason"] == "PasswordRejected" for e in cluster.events("alice"))
    _assert_no_password(cluster, operator, "alice", ALICE_PW, "Zq9x!kv")


async def test_a_secret_without_the_label_is_never_read_and_nothing_stored_is_lost(
    cluster: Cluster, operator: OperatorProcess, engine: AsyncEngine
) -> None:
    cluster.apply(secret("alice-password", ALICE_PW, labelled=False), apiuser("alice", "alice"))
    condition = cluster.wait_ready("alice", status="False", reason="SecretNotLabelled")
    assert (
        f"kubectl -n {cluster.namespace} label secret alice-password parley.dev/apiuser-password=true"
        in (condition["message"])
    )
    assert await row_of(engine, "alice") is None

    cluster.kubectl("label", "secret", "alice-password", "parley.dev/apiuser-password=true")
    cluster.wait_ready("alice", reason="Synced")
    good = await wait_row(engine, "alice", lambda row: verify_password(ALICE_PW, row.password_hash))
    fingerprint = (cluster.apiuser("alice") or {})["status"]["fingerprint"]

    cluster.kubectl("label", "secret", "alice-password", "parley.dev/apiuser-password-")
    cluster.wait_ready("alice", status="False", reason="SecretNotLabelled")
    assert await row_of(engine, "alice") == good  # an unlabelled Secret never clears or changes the row
    assert (cluster.apiuser("alice") or {})["status"]["fingerprint"] == fingerprint
    assert any(e["reason"] == "SecretNotLabelled" for e in cluster.events("alice"))
    _assert_no_password(cluster, operator, "alice", ALICE_PW)


def test_bad_specs_are_rejected_by_the_api_server(cluster: Cluster) -> None:
    both = apiuser("both", "both-sources")
    both["spec"]["vault"] = {"path": "parley/x", "key": "password"}
    neither = apiuser("neither", "no-source")
    del neither["spec"]["passwordSecretRef"]
    bad_name = apiuser("bad", "Not_A-Valid:Name")
    bad_path = apiuser("badpath", "bad-path", vault={"path": "../etc", "key": "password"})

    for manifest, expected in (
        (both, "exactly one password source"),
        (neither, "exactly one password source"),
        (bad_name, "spec.username"),
        (bad_path, "spec.vault.path"),
    ):
        result = cluster.apply(manifest, check=False)
        assert result.returncode != 0
        assert expected in result.stderr

    cluster.apply(apiuser("alice", "alice"))
    renamed = cluster.apply(apiuser("alice", "alice2"), check=False)
    assert renamed.returncode != 0
    assert "username is immutable" in renamed.stderr


async def test_resync_of_unchanged_users_makes_no_bcrypt_call(
    cluster: Cluster,
    start_operator: Callable[..., OperatorProcess],
    database_url: str,
    engine: AsyncEngine,
) -> None:
    first = start_operator(database_url, OPERATOR_RESYNC_SECONDS="5")
    names = ["u1", "u2", "u3"]
    for name in names:
        cluster.apply(secret(f"{name}-password", f"{name}-password-long"), apiuser(name, f"user-{name}"))
    for name in names:
        cluster.wait_ready(name)
    assert first.hashes() == len(names)
    await eventually(
        lambda: first.metric("parley_operator_reconciles_total", trigger="timer") >= len(names),
        "a timer resync of every user",
        timeout=DEADLINE,
    )
    assert first.hashes() == len(names)
    first.stop()

    second = start_operator(database_url, OPERATOR_RESYNC_SECONDS="5")
    await eventually(
        lambda: (
            second.metric("parley_operator_reconciles_total", trigger="resume", result="unchanged")
            + second.metric("parley_operator_reconciles_total", trigger="timer", result="unchanged")
            >= len(names)
        ),
        "the restarted operator to check every user",
        timeout=DEADLINE,
    )
    assert second.hashes() == 0
    assert second.metric("parley_operator_managed_users", ready="true") == len(names)
    assert 'parley_operator_reconcile_duration_seconds_bucket{le="0.5",trigger="resume"}' in second.metrics()


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test alone, so it can be stopped and started."""
    with throwaway_postgres("parley-oppg-", {"fsync": "off", "synchronous_commit": "off"}) as server:
        yield server


async def test_database_stopped_then_started_converges(
    cluster: Cluster, start_operator: Callable[..., OperatorProcess], own_postgres: LocalPostgres
) -> None:
    own_postgres.create_database("parley")
    url = own_postgres.url("parley")
    engine = create_async_engine(url)
    try:
        await schema.upgrade(engine)
        operator = start_operator(url, OPERATOR_RESYNC_SECONDS="300")
        cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
        cluster.wait_ready("alice")
        await engine.dispose()

        own_postgres.stop(mode="fast")
        cluster.apply(secret("carol-password", "carol-password-long"), apiuser("carol", "carol"))
        condition = cluster.wait_ready("carol", status="False", reason="DatabaseUnavailable")
        assert "retrying" in condition["message"]
        cluster.kubectl("delete", "apiuser", "alice", "--wait=false")
        await eventually(
            lambda: operator.metric("parley_operator_row_deletions_total", result="failed") >= 1,
            "the finalizer to meet the stopped database",
            timeout=DEADLINE,
        )
        assert cluster.apiuser("alice") is not None  # the finalizer waits for the database

        own_postgres.start()
        cluster.wait_ready("carol", reason="Synced")
        await eventually(
            lambda: cluster.apiuser("alice") is None, "alice's finalizer to finish", timeout=DEADLINE
        )
        assert await row_of(engine, "alice") is None
        row = await wait_row(engine, "carol")
        assert verify_password("carol-password-long", row.password_hash)
        assert operator.metric("parley_operator_row_deletions_total", result="failed") >= 1
    finally:
        await engine.dispose()


async def test_vault_source_without_vault_configured_says_so(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.apply(apiuser("dave", "dave", vault={"path": "parley/dashboard/dave", "key": "password"}))

    condition = cluster.wait_ready("dave", status="False", reason="VaultUnavailable")

    assert "VAULT_ADDR" in condition["message"]


def test_the_operator_serves_liveness_and_metrics(operator: OperatorProcess) -> None:
    health = httpx.get(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5)
    text_ = operator.metrics()

    assert health.status_code == 200
    for name in (
        "parley_operator_reconciles_total",
        "parley_operator_reconcile_duration_seconds",
        "parley_operator_managed_users",
        "parley_operator_password_hashes_total",
    ):
        assert name in text_
    assert operator.stop() == 0


def test_the_example_manifests_are_valid_apiusers(cluster: Cluster) -> None:
    examples = sorted((Path(__file__).resolve().parents[2] / "manifests" / "examples").glob("apiuser-*.yaml"))
    documents = [doc for path in examples for doc in yaml.safe_load_all(path.read_text()) if doc]
    for document in documents:
        document["metadata"]["namespace"] = cluster.namespace

    result = cluster.kubectl_input(["apply", "--dry-run=server", "-f", "-"], yaml.safe_dump_all(documents))

    assert len(examples) == 3
    assert result.count("(server dry run)") == len(documents)


def _service_account_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A kubeconfig holding a token of the parley-operator ServiceAccount in the test's namespace."""
    from kubernetes import client  # noqa: PLC0415

    with cluster.plane.api_client() as api:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[SA_ISSUER], expiration_seconds=3600)
        )
        issued = client.CoreV1Api(api).create_namespaced_service_account_token(
            "parley-operator", cluster.namespace, request
        )
    assert issued.status is not None
    token = issued.status.token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {
                    "server": cluster.plane.server,
                    "certificate-authority": str(cluster.plane.ca_path),
                },
            }
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "envtest", "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_the_documented_rbac_is_enough(
    cluster: Cluster,
    start_operator: Callable[..., OperatorProcess],
    database_url: str,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    cluster.kubectl("apply", "-f", str(RBAC))
    kubeconfig = _service_account_kubeconfig(cluster, tmp_path / "operator.kubeconfig")
    operator = start_operator(database_url, KUBECONFIG=str(kubeconfig), OPERATOR_RESYNC_SECONDS="5")

    cluster.apply(secret("alice-password", ALICE_PW), apiuser("alice", "alice"))
    cluster.apply(secret("bob-password", ALICE_PW, labelled=False), apiuser("bob", "bob"))
    cluster.wait_ready("alice")
    cluster.wait_ready("bob", status="False", reason="SecretNotLabelled")  # list and watch only: no get
    cluster.apply(secret("alice-password", ALICE_PW2))
    await wait_row(engine, "alice", lambda row: verify_password(ALICE_PW2, row.password_hash))
    assert any(event["reason"] == "Synced" for event in cluster.events("alice"))
    cluster.kubectl("delete", "apiuser", "alice")

    assert await row_of(engine, "alice") is None
    assert refusals(operator.log()) == []
