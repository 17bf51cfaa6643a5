"""parley_operator.sources: passwords from Secrets (named or labelled) and from Vault."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from parley_core.vault import VaultSettings
from parley_operator.model import SecretRef, VaultRef
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
from parley_operator.status import Reason
from parley_testing.doubles.vault import VaultDouble, run_vault_double
from tests.operator.support import PASSWORD, target


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
