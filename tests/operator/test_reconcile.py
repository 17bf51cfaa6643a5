"""Fast tests of the operator's logic, called directly: specs, sources, status, syncs on real PostgreSQL."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
from kubernetes.client.exceptions import ApiException
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_core.models import ApiUser, ApiUserSource
from parley_core.passwords import verify_password
from parley_core.repositories import api_users
from parley_core.settings import OperatorSettings, load_settings
from parley_core.vault import VaultSettings
from parley_operator import handlers, metrics
from parley_operator.__main__ import kopf_settings
from parley_operator.model import InvalidSpecError, SecretRef, Target, VaultRef, target_from
from parley_operator.reconcile import Hasher, Reconciler, row_fingerprint
from parley_operator.runtime import Runtime, runtime
from parley_operator.sources import (
    LabelledSecrets,
    NamedSecrets,
    PasswordSources,
    SecretSnapshot,
    SourceError,
    VaultPasswords,
    label_arguments,
    password_from_secret,
    password_problem,
)
from parley_operator.status import Outcome, Reason, is_transition, status_patch
from parley_testing.doubles.vault import VaultDouble, run_vault_double
from tests.utils.api_users import create_random_api_user
from tools.localpg import free_port

PASSWORD = "a-long-enough-password"
UID = "11111111-1111-1111-1111-111111111111"


def body(**spec: Any) -> dict[str, Any]:
    """An ApiUser body as kopf hands it over."""
    return {
        "apiVersion": "parley.dev/v1alpha1",
        "kind": "ApiUser",
        "metadata": {"namespace": "ns", "name": "alice", "uid": UID, "generation": 3},
        "spec": {"username": "alice", "passwordSecretRef": {"name": "alice-pw", "key": "password"}, **spec},
    }


def target(**changes: Any) -> Target:
    """A valid Target reading Secret ns/alice-pw."""
    return replace(target_from(body()), **changes)


# --- spec -------------------------------------------------------------------------------------


def test_target_from_reads_a_secret_source_and_the_adopt_annotation() -> None:
    raw = body(disabled=True)
    raw["metadata"]["annotations"] = {"parley.dev/adopt": "True"}

    parsed = target_from(raw)

    assert parsed == Target(
        "ns", "alice", UID, 3, "alice", SecretRef("alice-pw", "password"), None, True, True
    )
    assert parsed.reference["metadata"] == {"namespace": "ns", "name": "alice", "uid": UID}


def test_target_from_reads_a_vault_source() -> None:
    raw = body()
    del raw["spec"]["passwordSecretRef"]
    raw["spec"]["vault"] = {"path": "parley/dash/alice", "key": "pw"}

    assert target_from(raw).vault_ref == VaultRef("parley/dash/alice", "pw")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"username": "A"}, "spec.username"),
        ({"vault": {"path": "x", "key": "k"}}, "exactly one password source"),
        ({"passwordSecretRef": None}, "exactly one password source"),
        ({"passwordSecretRef": "alice-pw"}, "must be an object"),
        ({"passwordSecretRef": {"name": "Bad_Name", "key": "k"}}, "not a valid Secret name"),
        ({"passwordSecretRef": {"name": "ok", "key": "bad key"}}, "not a valid Secret key"),
    ],
)
def test_target_from_refuses_invalid_specs(spec: dict[str, Any], message: str) -> None:
    raw = body(**spec)
    if spec.get("passwordSecretRef", "") is None:
        del raw["spec"]["passwordSecretRef"]

    with pytest.raises(InvalidSpecError, match=message):
        target_from(raw)


@pytest.mark.parametrize(("path", "key"), [("../etc", "k"), ("a//b", "k"), ("/abs", "k"), ("ok", "")])
def test_target_from_refuses_bad_vault_refs(path: str, key: str) -> None:
    raw = body()
    del raw["spec"]["passwordSecretRef"]
    raw["spec"]["vault"] = {"path": path, "key": key}

    with pytest.raises(InvalidSpecError, match=r"spec\.vault"):
        target_from(raw)


# --- status -----------------------------------------------------------------------------------


def test_status_patch_writes_a_condition_once_and_then_nothing() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outcome = Outcome(True, Reason.SYNCED, "row created", wrote=True, fingerprint="secret:u@1#k",
                      secret_resource_version="1")  # fmt: skip

    first = status_patch({}, outcome, generation=3, now=now)
    unchanged = status_patch(first, replace(outcome, wrote=False), generation=3, now=now)

    assert first["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Synced",
            "message": "row created",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-02T03:04:05Z",
        }
    ]
    assert first["lastSyncTime"] == "2026-01-02T03:04:05Z"
    assert (first["fingerprint"], first["secretResourceVersion"], first.get("vaultVersion")) == (
        "secret:u@1#k",
        "1",
        None,
    )
    assert unchanged == {}


def test_status_patch_keeps_the_transition_time_while_the_status_stays() -> None:
    before = {"conditions": [{"type": "Ready", "status": "False", "reason": "SecretNotFound",
                              "lastTransitionTime": "2020-01-01T00:00:00Z"}]}  # fmt: skip

    patch = status_patch(before, Outcome(False, Reason.KEY_NOT_FOUND, "no key"), generation=1)

    assert patch["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert patch["conditions"][0]["reason"] == "KeyNotFound"
    assert is_transition(before, Outcome(False, Reason.KEY_NOT_FOUND, "no key"))
    assert not is_transition(before, Outcome(False, Reason.SECRET_NOT_FOUND, "still missing"))
    assert is_transition({}, Outcome(True, Reason.SYNCED, "ok"))


def test_outcome_result_labels() -> None:
    assert Outcome(True, Reason.SYNCED, "", wrote=True).result == "changed"
    assert Outcome(True, Reason.SYNCED, "").result == "unchanged"
    assert Outcome(False, Reason.CONFLICT, "").result == "Conflict"


# --- sources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "empty"),
        ("Zq9x!kv", "shorter than 12"),
        ("é" * 40, "longer than 72 bytes"),
        ("fine-password\n", "--from-file"),
        ("fine\x07password-long", "control character"),
        ("a-perfectly-fine-password", None),
    ],
)
def test_password_problem_names_the_rule_never_the_value(password: str, problem: str | None) -> None:
    found = password_problem(password, min_length=12)

    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert not password or password.strip() not in found


def snapshot(data: dict[str, bytes]) -> SecretSnapshot:
    """A Secret snapshot with base64-encoded ``data``."""
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return SecretSnapshot.from_body(
        {"metadata": {"namespace": "ns", "name": "s", "uid": "u", "resourceVersion": "7"}, "data": encoded}
    )


def test_password_from_secret_decodes_and_fingerprints_the_version() -> None:
    password = password_from_secret(snapshot({"pw": PASSWORD.encode()}), SecretRef("s", "pw"))

    assert password.value == PASSWORD
    assert password.fingerprint == "secret:u@7#pw"
    assert PASSWORD not in repr(password)


def test_password_from_secret_reports_missing_keys_and_binary_values() -> None:
    with pytest.raises(SourceError) as missing:
        password_from_secret(snapshot({"other": b"x"}), SecretRef("s", "pw"))
    with pytest.raises(SourceError) as binary:
        password_from_secret(snapshot({"pw": b"\xff\xfe"}), SecretRef("s", "pw"))

    assert (missing.value.reason, missing.value.temporary) == (Reason.KEY_NOT_FOUND, False)
    assert "keys: other" in missing.value.message
    assert binary.value.reason == Reason.PASSWORD_REJECTED


class FakeCoreApi:
    """CoreV1Api: read_namespaced_secret and list_namespaced_secret, raising what they are told."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.reads: list[str] = []

    def _secret(self, name: str, namespace: str) -> Any:
        from kubernetes import client  # noqa: PLC0415

        metadata = client.V1ObjectMeta(name=name, namespace=namespace, uid="u", resource_version="9")
        return client.V1Secret(metadata=metadata, data={"pw": base64.b64encode(PASSWORD.encode()).decode()})

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> Any:
        self.reads.append(name)
        if self.error is not None:
            raise self.error
        return self._secret(name, namespace)

    def list_namespaced_secret(self, namespace: str, **kwargs: Any) -> Any:
        from kubernetes import client  # noqa: PLC0415

        self.reads.append(kwargs["field_selector"])
        if self.error is not None:
            raise self.error
        name = kwargs["field_selector"].removeprefix("metadata.name=")
        return client.V1SecretList(items=[self._secret(name, namespace)])


async def test_named_secrets_read_only_the_named_ones_and_classify_api_errors() -> None:
    core = FakeCoreApi()
    named = NamedSecrets(core, ["s", "other"], timeout=1)
    found = await named.get("ns", "s")
    missing = await NamedSecrets(FakeCoreApi(ApiException(status=404)), ["s"], timeout=1).get("ns", "s")
    with pytest.raises(SourceError) as refused:
        await named.get("ns", "database")

    assert found is not None
    assert (found.uid, found.resource_version, dict(found.data)) == ("u", "9", {"pw": found.data["pw"]})
    assert missing is None
    assert (refused.value.reason, refused.value.temporary) == (Reason.SECRET_NOT_ALLOWED, False)
    assert "(s, other), not ns/database" in refused.value.message
    assert "operator.secrets.names" in refused.value.message
    assert core.reads == ["s"]  # a name outside the list is never requested
    for error, text in (
        (ApiException(status=403), "may not get Secret ns/s .*resourceNames"),
        (ApiException(status=500), "HTTP 500"),
        (ConnectionRefusedError(), "ConnectionRefusedError"),
    ):
        with pytest.raises(SourceError, match=text) as caught:
            await NamedSecrets(FakeCoreApi(error), ["s"], timeout=1).get("ns", "s")
        assert (caught.value.reason, caught.value.temporary) == (Reason.API_UNAVAILABLE, True)


async def test_labelled_secrets_list_by_label_and_name_and_classify_api_errors() -> None:
    core = FakeCoreApi()
    found = await LabelledSecrets(core, "parley.dev/apiuser-password=true", timeout=1).get("ns", "s")

    assert found is not None
    assert found.resource_version == "9"
    assert core.reads == ["metadata.name=s"]  # a labelled list by name, never a GET
    for error, text in (
        (ApiException(status=403), "may not list Secrets in ns .*list and watch"),
        (ApiException(status=500), "HTTP 500"),
        (TimeoutError(), "TimeoutError"),
    ):
        with pytest.raises(SourceError, match=text) as caught:
            await LabelledSecrets(FakeCoreApi(error), "a=b", timeout=1).get("ns", "s")
        assert (caught.value.reason, caught.value.temporary) == (Reason.API_UNAVAILABLE, True)


@pytest.mark.kube
async def test_labelled_secrets_never_return_an_unlabelled_secret(kube_api: Any, kube_namespace: str) -> None:
    from kubernetes import client  # noqa: PLC0415

    core = client.CoreV1Api(kube_api)
    for name, labels in (("labelled", {"parley.dev/apiuser-password": "true"}), ("plain", None)):
        core.create_namespaced_secret(
            kube_namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name, labels=labels), string_data={"pw": PASSWORD}
            ),
        )
    secrets = LabelledSecrets(core, "parley.dev/apiuser-password=true", timeout=5)
    sources = PasswordSources(secrets=secrets, vault=VaultPasswords(VaultSettings(addr=None)))

    found = await secrets.get(kube_namespace, "labelled")
    with pytest.raises(SourceError) as unlabelled:
        await secrets.get(kube_namespace, "plain")
    with pytest.raises(SourceError) as missing:
        await sources.read(replace(target(), namespace=kube_namespace, secret_ref=SecretRef("nothing", "pw")))

    assert found is not None
    assert password_from_secret(found, SecretRef("labelled", "pw")).value == PASSWORD
    assert (unlabelled.value.reason, unlabelled.value.temporary) == (Reason.SECRET_NOT_LABELLED, False)
    assert unlabelled.value.message == (
        f"Secret {kube_namespace}/plain lacks the label parley.dev/apiuser-password=true: the operator reads "
        f"only Secrets that carry it; add it with `kubectl -n {kube_namespace} label secret plain "
        "parley.dev/apiuser-password=true`"
    )
    assert missing.value.reason == Reason.SECRET_NOT_FOUND


def test_label_arguments_make_a_secret_match_the_selector() -> None:
    assert label_arguments("parley.dev/apiuser-password=true") == "parley.dev/apiuser-password=true"
    assert label_arguments("a==b,team,c=") == "a=b team=true c="


@pytest.fixture
def vault() -> Iterator[VaultDouble]:
    """A Vault double."""
    with run_vault_double() as double:
        yield double


def vault_settings(vault: VaultDouble, **overrides: Any) -> VaultSettings:
    """Token auth against the double, no retries."""
    return VaultSettings(addr=vault.url, token=vault.root_token, retries=0, **overrides)


async def test_vault_passwords_read_and_fingerprint_the_version(vault: VaultDouble) -> None:
    vault.put("dash/alice", {"pw": "one-password-long"})
    vault.put("dash/alice", {"pw": PASSWORD, "n": 5})
    source = VaultPasswords(vault_settings(vault))

    password = await source.read(VaultRef("dash/alice", "pw"))

    assert password.value == PASSWORD
    assert (password.fingerprint, password.vault_version) == ("vault:secret/dash/alice#pw@2", 2)
    for ref, reason in (
        (VaultRef("dash/nobody", "pw"), Reason.SECRET_NOT_FOUND),
        (VaultRef("dash/alice", "missing"), Reason.KEY_NOT_FOUND),
        (VaultRef("dash/alice", "n"), Reason.PASSWORD_REJECTED),
    ):
        with pytest.raises(SourceError) as caught:
            await source.read(ref)
        assert caught.value.reason == reason
    vault.fail_next(503)
    with pytest.raises(SourceError) as unavailable:
        await source.read(VaultRef("dash/alice", "pw"))
    assert (unavailable.value.reason, unavailable.value.temporary) == (Reason.VAULT_UNAVAILABLE, True)


async def test_vault_passwords_log_in_again_when_the_token_is_refused(
    vault: VaultDouble, tmp_path: Path
) -> None:
    jwt = tmp_path / "token"
    jwt.write_text("sa-token")
    vault.add_role("operator", jwt="sa-token", policies=["secret/dash/"])
    vault.put("dash/alice", {"pw": PASSWORD})
    source = VaultPasswords(
        VaultSettings(
            addr=vault.url, auth_method="kubernetes", role="operator", k8s_token_path=jwt, retries=0
        )
    )
    assert (await source.read(VaultRef("dash/alice", "pw"))).value == PASSWORD

    with vault.lock:  # every token expires
        vault.tokens.clear()

    assert (await source.read(VaultRef("dash/alice", "pw"))).value == PASSWORD
    assert len(vault.logins) == 2
    with pytest.raises(SourceError) as denied:
        await source.read(VaultRef("other/path", "pw"))
    assert (denied.value.reason, denied.value.temporary) == (Reason.VAULT_ACCESS_DENIED, True)


async def test_vault_passwords_without_vault_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="VAULT_ADDR") as caught:
        await VaultPasswords(VaultSettings(addr=None)).read(VaultRef("a", "b"))
    assert caught.value.temporary is False


# --- sync on real PostgreSQL --------------------------------------------------------------------


class FakeSecrets:
    """Secrets kept in a dict; a missing one reads as None."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], SecretSnapshot] = {}
        self.version = 0

    def put(self, name: str, password: str, key: str = "password") -> None:
        self.version += 1
        self.items["ns", name] = SecretSnapshot(
            "ns", name, f"uid-{name}", str(self.version), {key: base64.b64encode(password.encode()).decode()}
        )

    async def get(self, namespace: str, name: str) -> SecretSnapshot | None:
        return self.items.get((namespace, name))


def reconciler(engine: AsyncEngine, secrets: FakeSecrets, rounds: int = 4) -> Reconciler:
    """A Reconciler on ``engine`` with fake Secrets and no Vault."""
    return Reconciler(
        engine=engine,
        sources=PasswordSources(secrets=secrets, vault=VaultPasswords(VaultSettings(addr=None))),
        hasher=Hasher(rounds=rounds, concurrency=2),
        min_password_length=12,
    )


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


# --- handlers, settings, runtime ------------------------------------------------------------------


def test_indexes_and_the_secret_filter() -> None:
    annotations = {"parley.dev/secret-version": "u/1"}
    with_secret = kopf.Body(cast(kopf.RawBody, body()))
    raw_vault = body(vault={})
    del raw_vault["spec"]["passwordSecretRef"]
    with_vault = kopf.Body(cast(kopf.RawBody, raw_vault))

    by_secret = handlers.apiusers_by_secret(
        namespace="ns", name="alice", spec=with_secret.spec, annotations=annotations
    )

    assert by_secret == {("ns", "alice-pw"): ("alice", "u/1")}
    assert handlers.apiusers_by_secret(namespace="ns", name="a", spec=with_vault.spec, annotations={}) is None
    assert handlers.apiuser_uids(uid=UID) == {UID: True}
    assert handlers.is_referenced(namespace="ns", name="alice-pw", apiusers_by_secret={("ns", "alice-pw"): 1})
    assert not handlers.is_referenced(namespace="ns", name="x", apiusers_by_secret={})


async def test_an_invalid_spec_is_a_permanent_error_with_a_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda _body, **kwargs: events.append(kwargs))
    settings = load_settings(OperatorSettings, database_url="postgresql://x@127.0.0.1:1/x")
    memo = kopf.Memo(runtime=Runtime(settings=settings, reconciler=None, custom_api=None))  # type: ignore[arg-type]
    patch = kopf.Patch()
    kopf_body = kopf.Body(cast(kopf.RawBody, body(username="Not Valid")))

    with pytest.raises(kopf.PermanentError, match=r"spec\.username"):
        await handlers.sync_apiuser(
            param="create",
            body=kopf_body,
            status=kopf_body.status,
            retry=0,
            memo=memo,
            patch=patch,
            apiuser_uids={},
        )

    assert patch["status"]["conditions"][0]["reason"] == "InvalidSpec"
    assert events[0]["type"] == "Warning"


def test_runtime_requires_startup_and_backs_off_exponentially() -> None:
    settings = load_settings(
        OperatorSettings, operator_retry_base_seconds=1, operator_retry_max_seconds=10, database_url="x://"
    )
    rt = Runtime(settings=settings, reconciler=None, custom_api=None)  # type: ignore[arg-type]

    assert [rt.backoff(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    assert runtime(kopf.Memo(runtime=rt)) is rt
    with pytest.raises(kopf.TemporaryError):
        runtime(kopf.Memo())


def test_kopf_settings_use_parley_names_and_watch_timeouts() -> None:
    settings = load_settings(OperatorSettings, database_url="x://", operator_namespaces="a, b")

    configured = kopf_settings(settings)

    assert settings.operator_namespaces == ["a", "b"]
    assert configured.persistence.finalizer == "parley.dev/finalizer"
    assert configured.peering.standalone is True
    assert configured.peering.clusterwide is False
    assert configured.watching.server_timeout == 60
    assert configured.watching.client_timeout == 90
    assert configured.watching.connect_timeout == 10
    assert list(configured.watching.label_selectors.values()) == ["parley.dev/apiuser-password=true"]


def test_secret_modes_label_by_default_names_when_set() -> None:
    default = load_settings(OperatorSettings, database_url="x://")
    custom = load_settings(
        OperatorSettings, database_url="x://", operator_secret_label_selector=" team=a , parley.dev/pw "
    )
    named = load_settings(
        OperatorSettings,
        database_url="x://",
        operator_secret_names="one, two.x",
        operator_secret_label_selector="",
    )

    assert (default.operator_secret_label_selector, default.operator_secret_names) == (
        "parley.dev/apiuser-password=true",
        [],
    )
    assert custom.operator_secret_label_selector == "team=a,parley.dev/pw"
    assert named.operator_secret_names == ["one", "two.x"]
    assert list(kopf_settings(named).watching.label_selectors.values()) == []  # no Secret watch at all
    label_registry, named_registry = kopf.OperatorRegistry(), kopf.OperatorRegistry()
    handlers.register(label_registry, default)
    handlers.register(named_registry, named)
    watched = {str(h.id) for h in label_registry._watching.get_all_handlers()}
    timers = {str(h.id) for h in named_registry._spawning.get_all_handlers()}
    assert watched == {"secret_changed"}
    assert named_registry._watching.get_all_handlers() == []
    assert timers == {"apiuser_resync", "secret_poll"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"operator_secret_label_selector": ""}, "never reads every Secret"),
        ({"operator_secret_label_selector": "a!=b"}, "does not require a label"),
        ({"operator_secret_label_selector": "!a"}, "does not require a label"),
        ({"operator_secret_label_selector": "a in (b)"}, "does not require a label"),
        ({"operator_secret_names": "Not_A_Name"}, "is not a Secret name"),
    ],
)
def test_secret_settings_refuse_what_would_read_unmeant_secrets(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        load_settings(OperatorSettings, database_url="x://", **overrides)


class FakeCustomApi:
    """CustomObjectsApi.patch_namespaced_custom_object, recording the annotations it was given."""

    def __init__(self) -> None:
        self.stamped: list[tuple[str, str]] = []

    def patch_namespaced_custom_object(self, *args: Any, **_: Any) -> None:
        name, patch = args[4], args[5]
        self.stamped.append((name, patch["metadata"]["annotations"]["parley.dev/secret-version"]))


async def test_secret_poll_stamps_only_a_version_the_row_lacks() -> None:
    settings = load_settings(OperatorSettings, database_url="x://", operator_secret_names="alice-pw")
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)  # uid-alice-pw, resourceVersion 1
    custom = FakeCustomApi()
    rt = Runtime(settings=settings, reconciler=reconciler(None, secrets), custom_api=custom)  # type: ignore[arg-type]
    memo = kopf.Memo(runtime=rt)
    spec = kopf.Body(cast(kopf.RawBody, body())).spec

    async def poll(status: dict[str, Any], annotations: dict[str, str]) -> None:
        await handlers.secret_poll(
            namespace="ns", name="alice", spec=spec, status=status, annotations=annotations, memo=memo
        )

    await poll({"fingerprint": "secret:uid-alice-pw@1#password"}, {})  # in step: nothing
    secrets.put("alice-pw", "a-rotated-password")  # resourceVersion 2
    await poll({"fingerprint": "secret:uid-alice-pw@1#password"}, {})  # rotated: stamp
    await poll(
        {"fingerprint": "secret:uid-alice-pw@1#password"}, {"parley.dev/secret-version": "uid-alice-pw/2"}
    )
    del secrets.items["ns", "alice-pw"]
    await poll(
        {"fingerprint": "secret:uid-alice-pw@2#password"}, {"parley.dev/secret-version": "uid-alice-pw/2"}
    )
    await poll({}, {"parley.dev/secret-version": "deleted"})
    vault = kopf.Body(cast(kopf.RawBody, body(vault={"path": "a", "key": "b"}, passwordSecretRef=None))).spec
    await handlers.secret_poll(namespace="ns", name="v", spec=vault, status={}, annotations={}, memo=memo)

    assert custom.stamped == [("alice", "uid-alice-pw/2"), ("alice", "deleted")]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"operator_watch_client_timeout_seconds": 30}, "OPERATOR_WATCH_CLIENT_TIMEOUT_SECONDS"),
        ({"operator_retry_max_seconds": 0.1}, "OPERATOR_RETRY_MAX_SECONDS"),
    ],
)
def test_operator_settings_refuse_inconsistent_values(overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(Exception, match=variable):
        load_settings(OperatorSettings, database_url="x://", **overrides)


def test_managed_users_gauge_counts_ready_and_not() -> None:
    metrics.set_managed({"a": True, "b": False, "c": True})

    assert metrics.MANAGED_USERS.labels(ready="true")._value.get() == 2
    assert metrics.MANAGED_USERS.labels(ready="false")._value.get() == 1


def test_bad_configuration_exits_2_naming_the_variable() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x", "OPERATOR_METRICS_PORT": "no"}
    argv = [sys.executable, "-m", "parley_operator"]

    result = subprocess.run(argv, env=env, capture_output=True, check=False, text=True, timeout=60)

    assert result.returncode == 2
    assert "OPERATOR_METRICS_PORT" in result.stderr
