"""The database password only in Vault: the migrations Job, the API, the bot and the operator connect
with it, with no DB_PASSWORD or DATABASE_URL anywhere in their environment.

The database here checks passwords (scram-sha-256 for the application's role) — the shared test
server trusts every local connection, which could not tell a right password from none.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from parley_core.db import create_engine
from parley_core.settings import BotSettings, OperatorSettings, load_settings
from tests.support.vault_server import VaultServer
from tests.vault.support import LogGuard, wait_api_ready
from tools.localpg import LocalPostgres, free_port, throwaway_postgres

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
ROLE = "parley_vault_only"
DATABASE = "parley_vault_only"
PATHS = {"parley-api": "parley/api", "parley-bot": "parley/bot", "parley-operator": "parley/operator"}


@pytest.fixture(scope="module")
def password_checking_postgres() -> Iterator[tuple[LocalPostgres, str]]:
    """A cluster whose application role must present its password over TCP; yields it and the password."""
    password = "pw-" + secrets.token_urlsafe(18)
    with throwaway_postgres("parley-vault-db-") as server:
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
        server.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        server.psql("SELECT pg_reload_conf()")
        yield server, password


def _database_env(server: LocalPostgres) -> dict[str, str]:
    """DB_* without a password, and an environment free of any other database or Vault variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "DATABASE_URL", "DB_"))}
    return {
        **env,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(server.port),
        "DB_NAME": DATABASE,
        "DB_USER": ROLE,
        "LOG_FORMAT": "json",
    }


async def _connects(port: int, password: str) -> bool:
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user=ROLE, database=DATABASE, password=password
        )
    except asyncpg.InvalidPasswordError:
        return False
    await conn.close()
    return True


def test_the_database_checks_passwords(password_checking_postgres: tuple[LocalPostgres, str]) -> None:
    """The harness is not vacuous: a wrong password is refused, the right one accepted."""
    server, password = password_checking_postgres
    assert asyncio.run(_connects(server.port, "wrong")) is False
    assert asyncio.run(_connects(server.port, password)) is True


def test_migrations_and_api_read_the_password_from_vault(
    vault_server: VaultServer,
    password_checking_postgres: tuple[LocalPostgres, str],
    tmp_path: Path,
    log_guard: LogGuard,
) -> None:
    """`alembic upgrade head` as the migrations Job runs it, then `python -m parley_api` ready at head."""
    server, password = password_checking_postgres
    vault_server.put_secret(PATHS["parley-api"], {"db_password": password})
    log_guard.watch(password)
    base = _database_env(server)

    migrations_env = vault_server.kubernetes_env(
        tmp_path, role="parley-migrations", secret_path=PATHS["parley-api"]
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        env={**base, **migrations_env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]

    port = free_port()
    api_env = vault_server.kubernetes_env(tmp_path, role="parley-api", secret_path=PATHS["parley-api"])
    process = subprocess.Popen(
        [sys.executable, "-m", "parley_api"],
        env={**base, **api_env, "API_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_api_ready(f"http://127.0.0.1:{port}/ready", process)  # at head: it reads what alembic wrote
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    output = process.stdout.read() if process.stdout else ""
    assert ready["schema_revision"] == "at_head"
    log_guard.assert_clean(migrated.stdout, migrated.stderr, *output.splitlines())


SETTINGS: dict[str, type[BotSettings | OperatorSettings]] = {
    "parley-bot": BotSettings,
    "parley-operator": OperatorSettings,
}


@pytest.mark.parametrize("role", sorted(SETTINGS))
def test_bot_and_operator_connect_with_the_password_from_vault(
    vault_server: VaultServer,
    password_checking_postgres: tuple[LocalPostgres, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    """Their settings, loaded as at start-up, hold Vault's password, and their engine connects with it."""
    server, password = password_checking_postgres
    vault_server.put_secret(
        PATHS[role], {"db_password": password, "telegram_bot_token": "1:x", "llm_api_key": "k"}
    )
    env = {
        **_database_env(server),
        **vault_server.kubernetes_env(tmp_path, role=role, secret_path=PATHS[role]),
    }
    for name in list(os.environ):
        if name.startswith(("VAULT_", "DATABASE_URL", "DB_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings: BotSettings | OperatorSettings = load_settings(SETTINGS[role])

    async def select_one() -> int:
        engine = create_engine(settings, application_name=role)
        try:
            async with engine.connect() as conn:
                return int((await conn.exec_driver_sql("SELECT 1")).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(select_one()) == 1
