"""`make run`: Parley on this machine with nothing but the repo.

Starts (creating on first use) a PostgreSQL cluster under .data/ unless DATABASE_URL is set,
applies the migrations, then runs every configured service as a child process and prints
their URLs. Ctrl-C (or SIGTERM) stops the services gracefully, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_core.settings import ApiSettings, BotSettings, SettingsError, load_settings
from tools.localpg import LocalPostgres, PostgresNotFoundError

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("PARLEY_DATA_DIR", ROOT / ".data"))
LOCAL_DB = "parley"
STOP_TIMEOUT_SECONDS = 35


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
        asyncio.run(
            migrate(
                env.get("DATABASE_URL") or api_settings.sqlalchemy_url().render_as_string(hide_password=False)
            )
        )
        say("database schema is at head")
    except (PostgresNotFoundError, RuntimeError, OSError) as exc:
        say(f"cannot start: {exc}")
        return 1
    except SettingsError as exc:
        say(str(exc))
        return 2

    children = {"api": spawn("api", "parley_api", env)}
    missing = bot_settings.missing_for_start()
    if missing:
        say(f"bot not started: set {' and '.join(missing)} (environment or .env) to run it")
    else:
        say("bot: configured, but the bot service is not part of this build yet")

    base = f"http://localhost:{api_settings.api_port}"
    say(f"API:       {base}/   (OpenAPI docs at {base}/docs)")
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
