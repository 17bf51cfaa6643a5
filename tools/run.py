"""`make run`: Parley on this machine with nothing but the repo.

Starts (creating on first use) a PostgreSQL cluster under .data/ unless DATABASE_URL is set,
applies the migrations, then runs every configured service as a child process and prints
their URLs once the API answers. Ctrl-C, SIGTERM and SIGHUP all stop the services gracefully,
then PostgreSQL, even when stdout is gone (`make run | tee log`, a closed terminal).

One launcher per data directory: it holds an flock on .data/make-run.lock for its whole life, and a
second one refuses before touching anything, naming the first.
"""

from __future__ import annotations

import asyncio
import fcntl
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_core.models import ApiUser
from parley_core.passwords import hash_password_async
from parley_core.repositories import api_users
from parley_core.settings import ApiSettings, BotSettings, SettingsError, load_settings
from tools.localpg import LocalPostgres, PostgresNotFoundError

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("PARLEY_DATA_DIR", ROOT / ".data"))
LOCK_FILE = "make-run.lock"
LOCAL_DB = "parley"
STOP_TIMEOUT_SECONDS = 35
API_START_TIMEOUT_SECONDS = 60
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FIRST_ADMIN = "admin"


class AlreadyRunningError(RuntimeError):
    """Another launcher holds the data directory's lock."""


class PortInUseError(RuntimeError):
    """A port this run needs is taken by another process."""


# What a failed start raises: said in one line, then whatever had started is stopped.
STARTUP_ERRORS = (PostgresNotFoundError, RuntimeError, OSError, subprocess.SubprocessError, SQLAlchemyError)


def write_out(data: bytes) -> None:
    """Write to our stdout. A stdout that is gone (the `tee` of `make run | tee` died with Ctrl-C, the
    terminal closed) must not stop the shutdown: from then on everything goes to /dev/null."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError:  # EPIPE, or EIO from a hung-up terminal
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the unwritten buffer goes there too, not to a traceback
        os.close(devnull)


def say(message: str) -> None:
    """One line for the person at the terminal."""
    write_out(f"[make run] {message}\n".encode())


def relay(source: IO[bytes]) -> None:
    """Copy a child's stdout to ours line by line, so a closed stdout of ours is never the child's
    problem (it would log a traceback for every line it can no longer write)."""
    with source:
        for line in source:
            write_out(line)


def lock_data_dir(data_dir: Path, *, api_port: int, pg_port: int) -> TextIO:
    """Take the launcher's lock on ``data_dir``, held until the returned file is closed or this process
    ends (however it ends: the kernel drops it); AlreadyRunningError names the holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)  # the postgres user must reach its directories inside
    path = data_dir / LOCK_FILE
    lock = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read()
        lock.close()
        raise AlreadyRunningError(describe_holder(holder, path)) from None
    lock.truncate(0)
    owner = {"pid": os.getpid(), "api_port": api_port, "pg_port": pg_port, "data_dir": str(data_dir)}
    lock.write(json.dumps(owner) + "\n")
    lock.flush()
    return lock


def describe_holder(content: str, path: Path) -> str:
    """What the lock file says about the launcher holding it."""
    try:
        owner = json.loads(content)
        who = (
            f"pid {owner['pid']}, API port {owner['api_port']}, PostgreSQL port {owner['pg_port']}, "
            f"data dir {owner['data_dir']}"
        )
    except (ValueError, KeyError, TypeError):  # the holder has not written it yet
        who = f"lock {path}"
    return (
        f"another `make run` is already running ({who}). Stop it (Ctrl-C in its terminal), or give "
        "this one its own PARLEY_DATA_DIR, PARLEY_LOCAL_PG_PORT and API_PORT"
    )


def ensure_port_free(host: str, port: int, variable: str) -> None:
    """PortInUseError unless ``port`` can be bound on ``host`` (checked before anything starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} ({variable}) is taken by another process ({exc.strerror}); "
                f"stop that process or set {variable}"
            ) from None


def local_postgres() -> LocalPostgres:
    """The embedded cluster under DATA_DIR (not started)."""
    port = int(os.environ.get("PARLEY_LOCAL_PG_PORT", "54329"))
    return LocalPostgres(data_dir=DATA_DIR / "postgres", run_dir=DATA_DIR / "run", port=port)


def start_local_postgres(server: LocalPostgres | None = None) -> tuple[LocalPostgres, str]:
    """Create (first run) and start the embedded cluster; returns it and the app's URL."""
    server = server or local_postgres()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATA_DIR.chmod(0o755)  # the postgres user must reach its directories inside
    if not server.initialized():
        say(f"creating a local PostgreSQL cluster in {server.data_dir} (first run)")
    if server.is_running():
        say(f"local PostgreSQL already running on 127.0.0.1:{server.port}")
    else:
        ensure_port_free("127.0.0.1", server.port, "PARLEY_LOCAL_PG_PORT")
        server.start()
        say(f"local PostgreSQL started on 127.0.0.1:{server.port} (log: {server.log_file})")
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


def announce_first_admin(password: str | None) -> None:
    """The first admin's password, on the run that created it (it is stored only as a hash)."""
    if password is not None:
        say(f"first dashboard account: user {FIRST_ADMIN!r}, password {password!r}")
        say("  (shown only this once; more accounts: POST /api/v1/auth/register or an ApiUser resource)")


def announce_dashboard(base: str, admin_password: str | None, settings: ApiSettings) -> None:
    """The dashboard's URL, the first admin's password (once), and whether registration is on."""
    say(f"dashboard: {base}/   (API docs at {base}/docs)")
    announce_first_admin(admin_password)
    if settings.admin_registration_token is None:
        say("registration: off (set ADMIN_REGISTRATION_TOKEN in the environment or .env to enable it)")
    else:
        say(f"registration: POST {base}/api/v1/auth/register with X-Admin-Token: $ADMIN_REGISTRATION_TOKEN")


def spawn(name: str, module: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """Start ``python -m module`` in its own session (the terminal's signals reach only us), its stdout
    relayed to ours by the returned thread; stderr is shared."""
    say(f"starting {name}")
    child = subprocess.Popen(
        [sys.executable, "-m", module],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert child.stdout is not None
    thread = threading.Thread(target=relay, args=(child.stdout,), name=f"relay-{name}", daemon=True)
    thread.start()
    return child, thread


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
            child.wait()


def answers_http(host: str, port: int) -> bool:
    """Whether an HTTP server answers ``GET /`` on host:port (any status)."""
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@dataclass
class Launcher:
    """What one `make run` started, so that every way out stops exactly that."""

    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    relays: list[threading.Thread] = field(default_factory=list)
    server: LocalPostgres | None = None  # the embedded cluster, stopped on the way out
    lock: TextIO | None = None
    stop_signal: int | None = None

    def request_stop(self, sig: int, _frame: object) -> None:
        """Signal handler: only records the request; the main flow notices it between steps."""
        if self.stop_signal is None:
            self.stop_signal = sig

    def stopping(self) -> bool:
        """Whether a stop signal has arrived."""
        return self.stop_signal is not None

    def start(self) -> int | None:
        """Start everything; an exit code when the run ends here (failure or an early stop), else None."""
        try:
            api_settings = load_settings(ApiSettings)
            bot_settings = load_settings(BotSettings)
        except SettingsError as exc:
            say(str(exc))
            return 2
        try:
            admin_password = self._start_database(api_settings, bot_settings)
        except STARTUP_ERRORS as exc:
            if self.stopping():
                return 0  # Ctrl-C reached initdb/pg_ctl/psql too
            say(f"cannot start: {exc}")
            return 1
        if self.stopping():
            announce_first_admin(admin_password)  # created already: never lose it
            return 0
        self._spawn("api", "parley_api")
        if (code := self._wait_for_api(api_settings)) is not None:
            announce_first_admin(admin_password)
            return code
        base = f"http://localhost:{api_settings.api_port}"
        announce_dashboard(base, admin_password, api_settings)
        internals = f"http://localhost:{api_settings.api_management_port or api_settings.api_port}"
        say(f"health:    {internals}/health   readiness: {internals}/ready")
        self._start_bot(bot_settings)
        say("press Ctrl-C to stop")
        return None

    def _spawn(self, name: str, module: str) -> None:
        self.children[name], relay_thread = spawn(name, module, self.env)
        self.relays.append(relay_thread)

    def _wait_for_api(self, settings: ApiSettings) -> int | None:
        """Until the API answers HTTP (None); an exit code when it died, hung or we were stopped."""
        api = self.children["api"]
        host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
        deadline = time.monotonic() + API_START_TIMEOUT_SECONDS
        while not answers_http(host, settings.api_port):
            if self.stopping():
                return 0
            if api.poll() is not None:
                say(f"api exited with code {api.returncode} before it answered")
                return 1
            if time.monotonic() > deadline:
                say(f"api did not answer on port {settings.api_port} within {API_START_TIMEOUT_SECONDS} s")
                return 1
            time.sleep(0.1)
        return None

    def _start_database(self, api_settings: ApiSettings, bot_settings: BotSettings) -> str | None:
        """Lock the data dir, check the ports, start PostgreSQL and migrate; the first admin's password."""
        embedded = api_settings.database_url is None
        if embedded:
            pg_port = int(os.environ.get("PARLEY_LOCAL_PG_PORT", "54329"))
            self.lock = lock_data_dir(DATA_DIR, api_port=api_settings.api_port, pg_port=pg_port)
        ports = [(api_settings.api_host, api_settings.api_port, "API_PORT")]
        if api_settings.api_management_port is not None:
            ports.append((api_settings.api_host, api_settings.api_management_port, "API_MANAGEMENT_PORT"))
        if not bot_settings.missing_for_start():
            ports.append((bot_settings.bot_host, bot_settings.bot_port, "BOT_PORT"))
        for host, port, variable in ports:
            ensure_port_free(host, port, variable)
        if embedded:
            self.server = local_postgres()
            _, self.env["DATABASE_URL"] = start_local_postgres(self.server)
        else:
            say("using the database of DATABASE_URL")
        if self.stopping():
            return None
        admin_password = asyncio.run(prepare_database(self.env.get("DATABASE_URL"), api_settings))
        say("database schema is at head")
        return admin_password

    def _start_bot(self, settings: BotSettings) -> None:
        """Start `python -m parley_bot` when its token and LLM key are set; say what is missing otherwise."""
        missing = settings.missing_for_start()
        if missing:
            say(f"bot not started: set {' and '.join(missing)} (environment or .env) to run it")
            return
        self._spawn("bot", "parley_bot")
        base = f"http://localhost:{settings.bot_port}"
        say(f"bot:       {settings.bot_mode}; health {base}/health  metrics {base}/metrics")

    def watch(self) -> int:
        """Until a stop signal (0) or a child's death (1)."""
        while self.stop_signal is None:
            crashed = [name for name, child in self.children.items() if child.poll() is not None]
            if crashed:
                say(f"{', '.join(crashed)} exited unexpectedly; stopping everything")
                return 1
            time.sleep(0.2)
        return 0

    def shutdown(self) -> None:
        """Stop the children, then the embedded PostgreSQL, then let the next launcher in."""
        if self.stop_signal is not None:
            say(f"{signal.Signals(self.stop_signal).name} received")
        if self.children:
            say("stopping services")
            stop(self.children)
            for thread in self.relays:  # the children's last lines
                thread.join(timeout=5)
        if self.server is not None and self.server.is_running():
            self.server.stop()
            say("local PostgreSQL stopped")
        if self.lock is not None:
            self.lock.close()


def main() -> int:
    """Run until Ctrl-C (SIGTERM, SIGHUP); non-zero when something could not start or died."""
    launcher = Launcher(env=dict(os.environ))
    for sig in STOP_SIGNALS:
        signal.signal(sig, launcher.request_stop)
    try:
        code = launcher.start()
        return launcher.watch() if code is None else code
    finally:
        launcher.shutdown()


if __name__ == "__main__":
    sys.exit(main())
