"""`make run`: Parley on this machine with nothing but the repo.

Starts (creating on first use) a PostgreSQL cluster under .data/ unless DATABASE_URL is set,
applies the migrations, then runs every configured service as a child process and prints
their URLs. Ctrl-C (or SIGTERM) stops the services gracefully, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_core.models import ApiUser
from parley_core.passwords import hash_password_async
from parley_core.repositories import api_users
from parley_core.settings import ApiSettings, BotSettings, SettingsError, load_settings
from tools.localpg import LocalPostgres, PostgresNotFoundError

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("PARLEY_DATA_DIR", ROOT / ".data"))
LOCAL_DB = "parley"
STOP_TIMEOUT_SECONDS = 35
FIRST_ADMIN = "admin"


def say(message: str) -> None:
    """One line for the person at the terminal."""
    print(f"[make run] {message}", flush=True)


def start_local_postgres() -> tuple[LocalPostgres, str]:
    """Create (first run) and start the embedded cluster; returns it and the app's URL."""
    port = int(os.environ.get("PARLEY_LOCAL_PG_PORT", "54329"))
    server = LocalPostgres(data_dir=DATA_DIR / "postgres", run_dir=DATA_DIR / "run", port=port)
    DATA_DIR.mkdir(exist_ok=True)
    DATA_DIR.chmod(0o755)  # the postgres user must reach its directories inside
    first = not server.initialized()
    if first:
        say(f"creating a local PostgreSQL cluster in {server.data_dir} (first run)")
    if server.is_running():
        say(f"local PostgreSQL already running on 127.0.0.1:{port}")
    else:
        server.start()
        say(f"local PostgreSQL started on 127.0.0.1:{port} (log: {server.log_file})")
    if not server.database_exists(LOCAL_DB):
        server.create_database(LOCAL_DB)
    return server, server.url(LOCAL_DB)


async def migrate(database_url: str) -> None:
    """Bring the schema to head."""
    engine = create_async_engine(database_url)
    try:
        await schema.upgrade(engine)
    finally:
        await engine.dispose()


async def create_first_admin(database_url: str, *, bcrypt_rounds: int) -> str | None:
    """Like Grafana's first admin: when no dashboard account exists, create ``admin`` with a random
    password and return it (to be shown once); None when accounts exist already."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            if await conn.scalar(select(ApiUser.id).limit(1)) is not None:
                return None
            password = secrets.token_urlsafe(18)
            password_hash = await hash_password_async(password, rounds=bcrypt_rounds)
            try:
                await api_users.create(conn, username=FIRST_ADMIN, password_hash=password_hash)
            except api_users.DuplicateUsernameError:  # another launcher won the race
                return None
            return password
    finally:
        await engine.dispose()


async def prepare_database(database_url: str | None, settings: ApiSettings) -> str | None:
    """Migrate to head, then create the first admin if there is no account (its password, or None)."""
    url = database_url or settings.sqlalchemy_url().render_as_string(hide_password=False)
    await migrate(url)
    return await create_first_admin(url, bcrypt_rounds=settings.bcrypt_rounds)


def announce_dashboard(base: str, admin_password: str | None) -> None:
    """The dashboard's URL and, on the run that created it, the first admin's password (once)."""
    say(f"dashboard: {base}/   (API docs at {base}/docs)")
    if admin_password is not None:
        say(f"first dashboard account: user {FIRST_ADMIN!r}, password {admin_password!r}")
        say("  (shown only this once; more accounts: POST /api/v1/auth/register or an ApiUser resource)")


def spawn(name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``python -m module`` in its own process group, sharing our terminal."""
    say(f"starting {name}")
    return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT, start_new_session=True)


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, wait for their graceful shutdown, kill what hangs."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in time; killing it")
            child.kill()


def start_bot(
    settings: BotSettings, env: dict[str, str], children: dict[str, subprocess.Popen[bytes]]
) -> None:
    """Start `python -m parley_bot` when its token and LLM key are set; say what is missing otherwise."""
    missing = settings.missing_for_start()
    if missing:
        say(f"bot not started: set {' and '.join(missing)} (environment or .env) to run it")
        return
    children["bot"] = spawn("bot", "parley_bot", env)
    base = f"http://localhost:{settings.bot_port}"
    say(f"bot:       {settings.bot_mode}; health {base}/health  metrics {base}/metrics")


def main() -> int:
    """Run until Ctrl-C; non-zero when something could not start."""
    env = dict(os.environ)
    server: LocalPostgres | None = None
    try:
        api_settings = load_settings(ApiSettings)
        bot_settings = load_settings(BotSettings)
        if api_settings.database_url is None:
            server, env["DATABASE_URL"] = start_local_postgres()
        else:
            say("using the database of DATABASE_URL")
        admin_password = asyncio.run(prepare_database(env.get("DATABASE_URL"), api_settings))
        say("database schema is at head")
    except (PostgresNotFoundError, RuntimeError, OSError) as exc:
        say(f"cannot start: {exc}")
        return 1
    except SettingsError as exc:
        say(str(exc))
        return 2

    children = {"api": spawn("api", "parley_api", env)}
    start_bot(bot_settings, env, children)

    base = f"http://localhost:{api_settings.api_port}"
    announce_dashboard(base, admin_password)
    say(f"health:    {base}/health   readiness: {base}/ready")
    say("press Ctrl-C to stop")

    stopping = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        while not stopping:
            crashed = [name for name, child in children.items() if child.poll() is not None]
            if crashed:
                say(f"{', '.join(crashed)} exited unexpectedly; stopping everything")
                exit_code = 1
                break
            time.sleep(0.2)
    finally:
        say("stopping services")
        stop(children)
        if server is not None:
            server.stop()
            say("local PostgreSQL stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
