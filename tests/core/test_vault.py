"""Settings read secrets from Vault KV v2 (against the local Vault double)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from parley_core.settings import ApiSettings, BotSettings, SettingsError, load_settings
from parley_core.vault import VaultError, VaultReader, VaultSettings, VaultUnavailableError
from tests.doubles.vault import VaultDouble, run_vault_double


@pytest.fixture
def vault() -> Iterator[VaultDouble]:
    with run_vault_double() as double:
        yield double


def _token_env(monkeypatch: pytest.MonkeyPatch, vault: VaultDouble, path: str) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_TOKEN", vault.root_token)
    monkeypatch.setenv("VAULT_SECRET_PATH", path)
    monkeypatch.setenv("VAULT_RETRIES", "3")


def test_token_auth_fills_secret_fields(monkeypatch: pytest.MonkeyPatch, vault: VaultDouble) -> None:
    vault.put(
        "parley/bot",
        {
            "telegram_bot_token": "123456:" + "A" * 35,
            "LLM_API_KEY": "sk-vault",
            "unrelated": "ignored",
        },
    )
    _token_env(monkeypatch, vault, "parley/bot")

    settings = load_settings(BotSettings)

    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123456:" + "A" * 35
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-vault"


def test_vault_wins_over_environment_for_secrets(monkeypatch: pytest.MonkeyPatch, vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "from-vault"})
    _token_env(monkeypatch, vault, "parley/api")
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    monkeypatch.setenv("DB_HOST", "db.internal")

    settings = load_settings(ApiSettings)

    assert settings.db_password is not None
    assert settings.db_password.get_secret_value() == "from-vault"
    assert settings.db_host == "db.internal"  # non-secret fields still come from the environment


def test_kubernetes_auth_rereads_the_token_file_at_every_login(
    monkeypatch: pytest.MonkeyPatch, vault: VaultDouble, tmp_path: Path
) -> None:
    vault.put("parley/api", {"admin_registration_token": "reg-token-1"})
    token_file = tmp_path / "token"
    token_file.write_text("jwt-one\n")
    vault.add_role("parley-api", jwt="jwt-one", policies=["secret/parley/"])
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_ROLE", "parley-api")
    monkeypatch.setenv("VAULT_K8S_TOKEN_PATH", str(token_file))
    monkeypatch.setenv("VAULT_SECRET_PATH", "parley/api")

    first = load_settings(ApiSettings)
    token_file.write_text("jwt-two\n")  # the kubelet rotated the projected token
    vault.allow_jwt("parley-api", "jwt-two")
    second = load_settings(ApiSettings)

    assert [login["jwt"] for login in vault.logins] == ["jwt-one", "jwt-two"]
    assert first.admin_registration_token == second.admin_registration_token
    assert VaultSettings().resolved_auth_method() == "kubernetes"


def test_kubernetes_login_refused_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, vault: VaultDouble, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stolen-jwt")
    vault.add_role("parley-api", jwt="the-real-jwt", policies=["secret/parley/"])
    settings = VaultSettings(addr=vault.url, role="parley-api", k8s_token_path=token_file)

    with pytest.raises(VaultError, match="refused the kubernetes login"):
        VaultReader(settings).read("parley/api")


def test_unknown_role_and_unreadable_token_file(vault: VaultDouble, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    with pytest.raises(VaultError, match="invalid role name"):
        VaultReader(VaultSettings(addr=vault.url, role="nope", k8s_token_path=token_file)).login()
    with pytest.raises(VaultError, match="cannot read the service-account token"):
        VaultReader(VaultSettings(addr=vault.url, role="r", k8s_token_path=tmp_path / "x")).login()
    with pytest.raises(VaultError, match="needs VAULT_ROLE"):
        VaultReader(VaultSettings(addr=vault.url, auth_method="kubernetes")).login()


def test_policy_denied_path_names_the_path(vault: VaultDouble, tmp_path: Path) -> None:
    vault.put("other/app", {"db_password": "x"})
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    vault.add_role("parley-api", jwt="jwt", policies=["secret/parley/"])
    reader = VaultReader(VaultSettings(addr=vault.url, role="parley-api", k8s_token_path=token_file))

    with pytest.raises(VaultError, match=r"denied reading secret/other/app"):
        reader.read("other/app")


def test_missing_required_key_names_the_key_not_a_value(
    monkeypatch: pytest.MonkeyPatch, vault: VaultDouble
) -> None:
    vault.put("parley/api", {"db_password": "hunter2-secret"})
    _token_env(monkeypatch, vault, "parley/api")

    class NeedsToken(ApiSettings):
        admin_registration_token: SecretStr  # required here

    with pytest.raises(SettingsError) as caught:
        load_settings(NeedsToken)

    message = str(caught.value)
    assert "ADMIN_REGISTRATION_TOKEN is required" in message
    assert "'admin_registration_token' at Vault secret/parley/api" in message
    assert "hunter2-secret" not in message


def test_read_key_reports_a_missing_key(vault: VaultDouble) -> None:
    version = vault.put("parley/users/alice", {"password": "pw"})
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token))

    assert reader.read_key("parley/users/alice", "password") == ("pw", version)
    with pytest.raises(VaultError, match="key 'passwd' is missing at secret/parley/users/alice"):
        reader.read_key("parley/users/alice", "passwd")


def test_missing_secret_and_deleted_version_are_errors(vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "v1"})
    vault.delete_latest("parley/api")
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token))

    with pytest.raises(VaultError, match="no secret at secret/parley/api"):
        reader.read("parley/api")
    with pytest.raises(VaultError, match="no secret at secret/parley/nothing"):
        reader.read("parley/nothing")


def test_new_version_is_read_with_its_number(vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "v1"})
    vault.put("parley/api", {"db_password": "v2"})
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token))

    secret = reader.read("parley/api")

    assert (secret.data["db_password"], secret.version) == ("v2", 2)
    assert reader.read("parley/api", version=1).data["db_password"] == "v1"


@pytest.mark.parametrize("status", [412, 500, 502, 503])
def test_retryable_statuses_are_retried(vault: VaultDouble, status: int) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    vault.fail_next(status, times=2)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=3))

    assert reader.read("parley/api").data == {"db_password": "pw"}
    assert len(vault.requests) == 3


def test_exhausted_retries_mean_unavailable(vault: VaultDouble) -> None:
    vault.put("parley/api", {"db_password": "pw"})
    vault.fail_next(503, times=10)
    reader = VaultReader(VaultSettings(addr=vault.url, token=vault.root_token, retries=2))

    with pytest.raises(VaultUnavailableError, match="unavailable reading secret/parley/api"):
        reader.read("parley/api")
    assert len(vault.requests) == 3  # the first try and two retries


def test_vault_down_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("VAULT_TOKEN", "hvs.not-a-real-token-at-all")
    monkeypatch.setenv("VAULT_SECRET_PATH", "parley/api")
    monkeypatch.setenv("VAULT_RETRIES", "1")
    monkeypatch.setenv("VAULT_TIMEOUT_SECONDS", "0.5")

    with pytest.raises(SettingsError, match=r"cannot read secrets from Vault: .* is unavailable"):
        load_settings(ApiSettings)


def test_vault_without_secret_path_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    with pytest.raises(SettingsError, match="VAULT_SECRET_PATH is not"):
        load_settings(ApiSettings)


def test_token_method_without_token(vault: VaultDouble) -> None:
    with pytest.raises(VaultError, match="needs VAULT_TOKEN"):
        VaultReader(VaultSettings(addr=vault.url, auth_method="token")).login()
    with pytest.raises(VaultError, match="not configured"):
        VaultReader(VaultSettings())
