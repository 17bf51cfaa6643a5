"""A PostgreSQL server of our own from the machine's binaries: `make run`, the tests, benchmarks and
load tests use it (the last three through `throwaway_postgres`).

PostgreSQL refuses to run as root, so when we are root every server command runs as the
`postgres` system user and the data directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "postgres"
SUPERUSER = "parley"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotFoundError(RuntimeError):
    """No initdb/pg_ctl on this machine."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PG_BINDIR, PATH, or Debian's layout."""
    if configured := os.environ.get("PG_BINDIR"):
        if (Path(configured) / "pg_ctl").is_file():
            return Path(configured)
    elif (pg_ctl := shutil.which("pg_ctl")) and shutil.which("initdb"):
        return Path(pg_ctl).resolve().parent
    elif debian := sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True):
        return debian[0].parent
    raise PostgresNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them "
        "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15), "
        "set PG_BINDIR to their directory, or set DATABASE_URL to use an existing server."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _server_user() -> pwd.struct_passwd | None:
    if not _running_as_root():
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, but there is no {SERVER_USER!r} user to run PostgreSQL as "
            "(PostgreSQL refuses to run as root)"
        ) from None


def _give_to_server_user(path: Path) -> None:
    """Hand ``path`` (recursively) to the postgres user when we are root."""
    user = _server_user()
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def _identifier(name: str) -> str:
    """``name`` if it is a plain lower-case identifier; anything else is refused, not quoted."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


@dataclass
class LocalPostgres:
    """One cluster in ``data_dir``, listening on 127.0.0.1:``port`` and a socket in ``run_dir``."""

    data_dir: Path
    run_dir: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)

    @property
    def log_file(self) -> Path:
        """The server's own log (startup failures are explained here)."""
        return self.run_dir / "postgres.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        return subprocess.run(
            list(args),
            check=check,
            capture_output=True,
            text=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            cwd="/",  # the postgres user may not be able to read our cwd
        )

    def initialized(self) -> bool:
        """Whether initdb has already run in ``data_dir``."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb with trust auth for local connections only (the server listens on loopback)."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _give_to_server_user(self.data_dir)
        _give_to_server_user(self.run_dir)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def is_running(self) -> bool:
        """Whether pg_ctl sees a live server for ``data_dir``."""
        if not self.initialized():
            return False
        status = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status", check=False)
        return status.returncode == 0

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if not self.initialized():
            self.init()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _give_to_server_user(self.run_dir)
        options = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.run_dir),
            **self.settings,
        }
        rendered = " ".join(f"-c {key}={value}" for key, value in options.items())
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            rendered,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(self.log_file.read_text().splitlines()[-15:])
            raise RuntimeError(f"PostgreSQL did not start (port {self.port}):\n{result.stderr}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` rolls back open transactions and exits cleanly."""
        if self.initialized():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "stop",
                check=False,
            )

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command as the superuser through the socket; returns psql's output."""
        psql = self.bindir / "psql"
        result = self._run(
            str(psql if psql.exists() else "psql"),
            "-h",
            str(self.run_dir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        )
        return result.stdout.strip()

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """CREATE DATABASE, optionally as a copy of ``template`` (fast per-test isolation)."""
        clause = f" TEMPLATE {_identifier(template)}" if template else ""
        self.psql(f"CREATE DATABASE {_identifier(name)}{clause}")

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting whoever is still connected."""
        self.psql(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")

    def database_exists(self, name: str) -> bool:
        """Whether ``name`` exists in the cluster."""
        sql = f"SELECT 1 FROM pg_database WHERE datname = '{_identifier(name)}'"  # noqa: S608
        return self.psql(sql) == "1"

    def url(self, database: str) -> str:
        """The asyncpg URL of ``database`` over TCP loopback."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def throwaway_postgres(prefix: str, settings: dict[str, str] | None = None) -> Iterator[LocalPostgres]:
    """A started cluster in a new temporary directory, stopped and deleted afterwards.

    The directory is made traversable (0755) because the server runs as the `postgres` user when we
    are root. Raises PostgresNotFoundError before creating anything when there are no binaries.
    """
    bindir = find_bindir()
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    server = LocalPostgres(
        data_dir=base / "data", run_dir=base / "run", port=free_port(), settings=settings or {}, bindir=bindir
    )
    try:
        server.start()
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
