"""The services' settings read their secrets from a real Vault, logging in with a ServiceAccount token.

Vault is a dev server built by `make envtest`; its Kubernetes auth method reviews tokens through the
test kube-apiserver, and the tokens come from the TokenRequest API — what the kubelet mounts into a pod.
The policies and roles are those of docs/guides/secrets-management.md (tests/support/vault_server.py).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from parley_core.settings import ApiSettings, BotSettings, OperatorSettings, SettingsError, load_settings
from parley_core.vault import VaultError, VaultReader, VaultSettings
from parley_testing.kube import SA_ISSUER
from parley_testing.waiting import wait_for
from tests.support.vault_server import (
    API_SERVICE_ACCOUNT,
    APP_NAMESPACE,
    BOT_SERVICE_ACCOUNT,
    VaultServer,
    ensure_service_account,
)
from tests.vault.support import LogGuard

pytestmark = pytest.mark.kube

API_PATH = "parley/api"
BOT_PATH = "parley/bot"
OPERATOR_PATH = "parley/operator"


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


def _message(exc: pytest.ExceptionInfo[SettingsError]) -> str:
    return str(exc.value)


def test_api_settings_come_from_vault_via_kubernetes_login(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    values = {
        "db_password": _secret("db"),
        "admin_registration_token": _secret("reg"),
        "rate_limit_storage_uri": f"redis://:{_secret('redis')}@redis.parley:6379/0",
        "unrelated_key": "shared secrets may hold other services' keys",
    }
    version = vault_server.put_secret(API_PATH, values)
    env = vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH)
    _use(monkeypatch, env)
    monkeypatch.setenv("DB_HOST", "db.parley.svc")
    log_guard.watch(*values.values(), Path(env["VAULT_K8S_TOKEN_PATH"]).read_text())

    settings = load_settings(ApiSettings)

    assert VaultSettings().resolved_auth_method() == "kubernetes"
    assert settings.db_password == SecretStr(values["db_password"])
    assert settings.admin_registration_token == SecretStr(values["admin_registration_token"])
    assert settings.rate_limit_storage == values["rate_limit_storage_uri"]
    assert settings.db_host == "db.parley.svc"  # non-secret settings still come from the environment
    assert settings.sqlalchemy_url().password == values["db_password"]
    assert VaultReader(VaultSettings()).read(API_PATH).version == version


def test_bot_settings_come_from_vault_and_win_over_the_environment(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    values = {
        "telegram_bot_token": "123456789:" + secrets.token_urlsafe(27),
        "LLM_API_KEY": "sk-or-v1-" + secrets.token_hex(24),  # upper-case keys are accepted too
        "telegram_webhook_secret": secrets.token_hex(16),
    }
    vault_server.put_secret(BOT_PATH, values)
    _use(monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-bot", secret_path=BOT_PATH))
    monkeypatch.setenv("LLM_API_KEY", "sk-stale-value-from-the-environment")
    log_guard.watch(*values.values())

    settings = load_settings(BotSettings)

    assert settings.telegram_bot_token == SecretStr(values["telegram_bot_token"])
    assert settings.llm_api_key == SecretStr(values["LLM_API_KEY"])
    assert settings.telegram_webhook_secret == SecretStr(values["telegram_webhook_secret"])
    assert settings.missing_for_start() == []


def test_token_auth_for_local_runs(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, log_guard: LogGuard
) -> None:
    password = _secret("local")
    vault_server.put_secret(API_PATH, {"db_password": password})
    _use(
        monkeypatch,
        {
            "VAULT_ADDR": vault_server.addr,
            "VAULT_TOKEN": vault_server.root_token,
            "VAULT_SECRET_PATH": API_PATH,
        },
    )
    log_guard.watch(password, vault_server.root_token)

    settings = load_settings(ApiSettings)

    assert VaultSettings().resolved_auth_method() == "token"
    assert settings.db_password == SecretStr(password)


def test_rotated_secret_is_picked_up_at_the_next_start(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    old, new = _secret("old"), _secret("new")
    first_version = vault_server.put_secret(API_PATH, {"admin_registration_token": old})
    env = vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH)
    _use(monkeypatch, env)
    token_file = Path(env["VAULT_K8S_TOKEN_PATH"])
    first_jwt = token_file.read_text()
    log_guard.watch(old, new, first_jwt)

    running = load_settings(ApiSettings)
    second_version = vault_server.put_secret(API_PATH, {"admin_registration_token": new})
    # Meanwhile the kubelet rotated the projected token: the next login must read the new file.
    token_file.write_text(vault_server.service_account_token(APP_NAMESPACE, API_SERVICE_ACCOUNT))
    log_guard.watch(token_file.read_text())
    restarted = load_settings(ApiSettings)

    assert second_version == first_version + 1
    # Secrets are read at start-up: the running process keeps what it read, a restart gets the new one.
    assert running.admin_registration_token == SecretStr(old)
    assert restarted.admin_registration_token == SecretStr(new)
    reader = VaultReader(VaultSettings())
    assert reader.read(API_PATH).version == second_version
    assert reader.read(API_PATH, version=first_version).data == {"admin_registration_token": old}


def test_service_account_of_another_namespace_is_refused(
    vault_server: VaultServer,
    kube_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    log_guard: LogGuard,
) -> None:
    # Same ServiceAccount name, wrong namespace: the role binds parley-api in `parley` only.
    assert vault_server.kube is not None
    with vault_server.kube.api_client() as api:
        ensure_service_account(api, kube_namespace, API_SERVICE_ACCOUNT)
    env = vault_server.kubernetes_env(
        tmp_path, role="parley-api", secret_path=API_PATH, namespace=kube_namespace
    )
    _use(monkeypatch, env)
    log_guard.watch(Path(env["VAULT_K8S_TOKEN_PATH"]).read_text())

    with pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings)

    message = _message(caught)
    assert "cannot read secrets from Vault" in message
    assert "refused the kubernetes login (role 'parley-api')" in message
    assert "bound service account and namespace" in message
    log_guard.assert_clean(message)


def test_service_account_of_another_service_is_refused(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    env = vault_server.kubernetes_env(
        tmp_path, role="parley-api", secret_path=API_PATH, service_account=BOT_SERVICE_ACCOUNT
    )
    _use(monkeypatch, env)
    log_guard.watch(Path(env["VAULT_K8S_TOKEN_PATH"]).read_text())

    with pytest.raises(SettingsError, match=r"refused the kubernetes login \(role 'parley-api'\)"):
        load_settings(ApiSettings)


def test_token_for_another_audience_is_refused(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    # A token meant for the Kubernetes API (the pod's default token) is not a token for Vault.
    env = vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH)
    token_file = Path(env["VAULT_K8S_TOKEN_PATH"])
    token_file.write_text(
        vault_server.service_account_token(APP_NAMESPACE, API_SERVICE_ACCOUNT, audience=SA_ISSUER)
    )
    _use(monkeypatch, env)
    log_guard.watch(token_file.read_text())

    with pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings)

    message = _message(caught)
    assert "refused the kubernetes login (role 'parley-api')" in message
    log_guard.assert_clean(message)


def test_unknown_role_is_named(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    env = vault_server.kubernetes_env(
        tmp_path, role="parley-dashboard", secret_path=API_PATH, service_account=API_SERVICE_ACCOUNT
    )
    _use(monkeypatch, env)
    log_guard.watch(Path(env["VAULT_K8S_TOKEN_PATH"]).read_text())

    with pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings)

    message = _message(caught)
    assert "rejected the kubernetes login" in message
    assert "parley-dashboard" in message
    log_guard.assert_clean(message)


def test_path_outside_the_policy_is_denied(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    token = "123456789:" + secrets.token_urlsafe(27)
    vault_server.put_secret(BOT_PATH, {"telegram_bot_token": token})
    # The API's role may read secret/parley/api only.
    _use(monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=BOT_PATH))
    log_guard.watch(token)

    with pytest.raises(SettingsError) as caught:
        load_settings(BotSettings)

    message = _message(caught)
    assert "denied reading secret/parley/bot: check the policy attached to the role" in message
    log_guard.assert_clean(message)


def test_missing_secret_is_named(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    vault_server.destroy_all(OPERATOR_PATH)
    _use(
        monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-operator", secret_path=OPERATOR_PATH)
    )

    with pytest.raises(SettingsError, match=r"has no secret at secret/parley/operator"):
        load_settings(OperatorSettings)


def test_deleted_latest_version_is_an_error_not_an_older_value(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    password = _secret("deleted")
    vault_server.destroy_all(OPERATOR_PATH)
    vault_server.put_secret(OPERATOR_PATH, {"db_password": password})
    vault_server.delete_latest(OPERATOR_PATH)
    _use(
        monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-operator", secret_path=OPERATOR_PATH)
    )
    log_guard.watch(password)

    with pytest.raises(SettingsError) as caught:
        load_settings(OperatorSettings)

    assert "no secret at secret/parley/operator (missing or its version is deleted)" in _message(caught)


def test_missing_required_key_names_key_and_path_never_values(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    llm_key = "sk-or-v1-" + secrets.token_hex(24)
    vault_server.put_secret(BOT_PATH, {"llm_api_key": llm_key})
    _use(monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-bot", secret_path=BOT_PATH))
    log_guard.watch(llm_key)

    class StrictBot(BotSettings):
        telegram_bot_token: SecretStr  # required here

    with pytest.raises(SettingsError) as caught:
        load_settings(StrictBot)

    message = _message(caught)
    assert (
        "TELEGRAM_BOT_TOKEN is required: set TELEGRAM_BOT_TOKEN in the environment "
        "or key 'telegram_bot_token' at Vault secret/parley/bot"
    ) in message
    log_guard.assert_clean(message)


def test_read_key_names_a_missing_key(vault_server: VaultServer, tmp_path: Path, log_guard: LogGuard) -> None:
    path = f"parley/dashboard/{uuid.uuid4().hex[:8]}"
    password = _secret("pw")
    version = vault_server.put_secret(path, {"password": password})
    token_file = vault_server.token_file(tmp_path, APP_NAMESPACE, "parley-operator")
    reader = VaultReader(
        VaultSettings(addr=vault_server.addr, role="parley-operator", k8s_token_path=token_file)
    )
    log_guard.watch(password, token_file.read_text())

    assert reader.read_key(path, "password") == (password, version)
    with pytest.raises(VaultError, match=rf"key 'passwd' is missing at secret/{path} \(version {version}\)"):
        reader.read_key(path, "passwd")


def test_vault_down_fails_start_up_after_retrying(
    vault_dev_server_factory: Callable[[], VaultServer], monkeypatch: pytest.MonkeyPatch, log_guard: LogGuard
) -> None:
    server = vault_dev_server_factory()
    server.put_secret(API_PATH, {"db_password": "never-read-" + secrets.token_hex(8)})
    server.stop()  # Vault is gone: connections are refused
    _use(
        monkeypatch,
        {
            "VAULT_ADDR": server.addr,
            "VAULT_TOKEN": server.root_token,
            "VAULT_SECRET_PATH": API_PATH,
            "VAULT_RETRIES": "3",
        },
    )
    log_guard.watch(server.root_token)

    with pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings)

    message = _message(caught)
    assert f"Vault at {server.addr} is unavailable reading secret/parley/api: ConnectionError" in message
    assert log_guard.count("Retrying (Retry(") == 3  # urllib3 retried the refused connection thrice
    log_guard.assert_clean(message)


def test_sealed_vault_is_unavailable_after_the_retries(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    _use(monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH))
    monkeypatch.setenv("VAULT_RETRIES", "2")

    with vault_server.sealed(), pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings)

    assert "is unavailable during login: VaultDown" in _message(caught)
    assert log_guard.count("Retry: /v1/auth/kubernetes/login") == 2  # 503 retried, then given up


def test_sealed_vault_is_retried_until_it_answers(
    vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_guard: LogGuard
) -> None:
    password = _secret("patient")
    vault_server.put_secret(API_PATH, {"db_password": password})
    _use(monkeypatch, vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH))
    monkeypatch.setenv("VAULT_RETRIES", "10")  # backoff 0.2 s doubling: a window of minutes
    log_guard.watch(password)
    result: dict[str, ApiSettings | BaseException] = {}

    def start() -> None:
        try:
            result["settings"] = load_settings(ApiSettings)
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    vault_server.seal()
    try:
        thread = threading.Thread(target=start)
        thread.start()
        # Until the start-up has met a 503 at least once.
        wait_for(lambda: log_guard.count("Retry: ") >= 1, "a retried 503", timeout=30, interval=0.05)
    finally:
        vault_server.unseal()
    thread.join(timeout=60)

    assert "error" not in result, result.get("error")
    settings = result["settings"]
    assert isinstance(settings, ApiSettings)
    assert settings.db_password == SecretStr(password)
    assert log_guard.count("Retry: ") >= 1
