"""Vault client behaviour a real dev server cannot script: 412/5xx answers, exhausted retries, local checks.

Everything a real server can show — token and Kubernetes logins, refused roles, policy denials, missing
secrets, keys and deleted versions, rotation, Vault down or sealed — is tested against one in tests/vault/
(`make envtest` builds it). Here the HTTP double answers with scripted statuses instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parley_core.settings import ApiSettings, SettingsError, load_settings
from parley_core.vault import (
    VaultAccessDeniedError,
    VaultError,
    VaultReader,
    VaultSettings,
    VaultUnavailableError,
)
from parley_testing.doubles.vault import VaultDouble, run_vault_double


@pytest.fixture
def vault() -> Iterator[VaultDouble]:
    with run_vault_double() as double:
        yield double


@pytest.mark.parametrize("status", [412, 500, 502, 503])
def test_retryable_statuses_are_retried(vault: VaultDouble, status: int) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    vault.fail_next(status, times=2)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=3))

    assert reader.read("parley/api").data == {"db_password": "pw"}
    assert len(vault.requests) == 3


def test_login_is_retried_on_5xx(vault: VaultDouble, tmp_path: Path) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    vault.add_role("parley-api", jwt="jwt", policies=["secret/parley/"])
    vault.fail_next(502)
    reader = VaultReader(VaultSettings(addr=vault.url, role="parley-api", k8s_token_path=token_file))

    assert reader.read("parley/api").data == {"db_password": "pw"}
    assert [method for method, _ in vault.requests] == ["POST", "POST", "GET"]


@pytest.mark.parametrize("status", [403, 404])
def test_client_errors_are_not_retried(vault: VaultDouble, status: int) -> None:
    vault.fail_next(status, times=5)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=3))

    with pytest.raises(VaultError):
        reader.read("parley/api")
    assert len(vault.requests) == 1


def test_rate_limited_reads_are_retried(vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    vault.fail_next(429, times=2)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=3))

    assert reader.read("parley/api").data == {"db_password": "pw"}
    assert len(vault.requests) == 3


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (403, VaultAccessDeniedError, "denied reading secret/parley/api: check the policy"),
        (405, VaultError, "answered reading secret/parley/api with .*: scripted failure 405"),
        (400, VaultError, "answered reading secret/parley/api with InvalidRequest: scripted failure 400"),
        (429, VaultUnavailableError, "unavailable reading secret/parley/api: RateLimitExceeded"),
    ],
)
def test_every_answer_becomes_a_clear_vault_error(
    vault: VaultDouble, status: int, error: type[VaultError], message: str
) -> None:
    vault.fail_next(status, times=5)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=0))

    with pytest.raises(error, match=message) as caught:
        reader.read("parley/api")
    assert type(caught.value).__module__ == "parley_core.vault"  # not a raw hvac exception


def test_exhausted_retries_mean_unavailable(vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    vault.fail_next(503, times=10)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=2))

    with pytest.raises(VaultUnavailableError, match="unavailable reading secret/parley/api"):
        reader.read("parley/api")
    assert len(vault.requests) == 3  # the first try and two retries


def test_unreadable_token_file_and_missing_role(tmp_path: Path) -> None:
    addr = "http://127.0.0.1:9"  # never contacted: these fail before any request
    with pytest.raises(VaultError, match="cannot read the service-account token"):
        VaultReader(VaultSettings(addr=addr, role="r", k8s_token_path=tmp_path / "x")).login()
    with pytest.raises(VaultError, match="needs VAULT_ROLE"):
        VaultReader(VaultSettings(addr=addr, auth_method="kubernetes")).login()


def test_vault_without_secret_path_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    with pytest.raises(SettingsError, match="VAULT_SECRET_PATH is not"):
        load_settings(ApiSettings)


def test_token_method_without_token() -> None:
    with pytest.raises(VaultError, match="needs VAULT_TOKEN"):
        VaultReader(VaultSettings(addr="http://127.0.0.1:9", auth_method="token")).login()
    with pytest.raises(VaultError, match="not configured"):
        VaultReader(VaultSettings())
