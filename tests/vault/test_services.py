"""The real API process (`python -m parley_api`) takes its secrets from Vault, as a pod of the chart would."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.vault_server import BOT_SERVICE_ACCOUNT, VaultServer
from tests.vault.support import LogGuard, wait_api_ready
from tools.localpg import free_port

pytestmark = pytest.mark.kube

API_PATH = "parley/api"


def _process_env(vault_env: dict[str, str], port: int) -> dict[str, str]:
    """The test's environment without any database or Vault variables, plus the pod's VAULT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "DATABASE_URL", "DB_"))}
    return {**env, **vault_env, "API_PORT": str(port), "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}


def test_api_process_reads_database_url_and_admin_token_from_vault(
    vault_server: VaultServer, database_url: str, tmp_path: Path, log_guard: LogGuard
) -> None:
    # Trust auth ignores the password, but the process must still treat it as a secret.
    db_password = "db-" + secrets.token_urlsafe(18)
    vault_url = make_url(database_url).set(password=db_password).render_as_string(hide_password=False)
    admin_token = "adm-" + secrets.token_urlsafe(24)
    vault_server.put_secret(API_PATH, {"database_url": vault_url, "admin_registration_token": admin_token})
    vault_env = vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=API_PATH)
    jwt = Path(vault_env["VAULT_K8S_TOKEN_PATH"]).read_text()
    log_guard.watch(db_password, vault_url, admin_token, jwt)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "parley_api"],
        env=_process_env(vault_env, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Without DATABASE_URL in its environment, /ready is 200 only if the URL came from Vault.
        wait_api_ready(f"http://127.0.0.1:{port}/ready", process)
        account = {"username": "vault-reader", "password": "correct horse battery staple"}
        log_guard.watch(account["password"])
        refused = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/register",
            json=account,
            headers={"X-Admin-Token": "not-the-token-in-vault"},
            timeout=10,
        )
        created = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/register",
            json=account,
            headers={"X-Admin-Token": admin_token},
            timeout=10,
        )
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    output = process.stdout.read() if process.stdout else ""

    assert refused.status_code == 403
    assert created.status_code == 201, created.text
    assert exit_code == 0
    assert "api_listening" in output
    log_guard.assert_clean(*output.splitlines())


def test_api_process_with_a_refused_login_exits_2_naming_the_role(
    vault_server: VaultServer, tmp_path: Path, log_guard: LogGuard
) -> None:
    # The bot's ServiceAccount token presented for the API's role.
    vault_env = vault_server.kubernetes_env(
        tmp_path, role="parley-api", secret_path=API_PATH, service_account=BOT_SERVICE_ACCOUNT
    )
    log_guard.watch(Path(vault_env["VAULT_K8S_TOKEN_PATH"]).read_text())

    result = subprocess.run(
        [sys.executable, "-m", "parley_api"],
        env=_process_env(vault_env, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("parley-api: invalid configuration:")
    assert "cannot read secrets from Vault" in result.stderr
    assert f"Vault at {vault_server.addr} refused the kubernetes login (role 'parley-api')" in result.stderr
    log_guard.assert_clean(result.stdout, result.stderr)
