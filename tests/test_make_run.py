"""`make run`'s launcher end to end: embedded PostgreSQL, migrations, API ready, clean Ctrl-C, one launcher
per data directory, a closed stdout, and `make help`."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from parley_testing.waiting import wait_for
from tools.localpg import LocalPostgres, find_bindir, free_port

ROOT = Path(__file__).resolve().parents[1]
Launcher = subprocess.Popen[bytes]
START_TIMEOUT = 90


def _answering(url: str, status: int) -> httpx.Response:
    """The first answer ``status`` of ``url``."""

    def probe() -> httpx.Response | None:
        response = httpx.get(url, timeout=2)
        return response if response.status_code == status else None

    return wait_for(probe, f"{url} to answer {status}", timeout=START_TIMEOUT)


class Output:
    """A launcher's stdout read without blocking past a deadline (a raw pipe, so it can be closed)."""

    def __init__(self, process: Launcher) -> None:
        assert process.stdout is not None
        self.pipe = process.stdout
        self.text = ""

    def wait_for(self, needle: str, timeout: float = START_TIMEOUT) -> str:
        """The first complete line containing ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.text.splitlines(keepends=True):
                if needle in line and line.endswith("\n"):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {needle!r} in:\n{self.text}")
            if select.select([self.pipe], [], [], remaining)[0]:
                chunk = os.read(self.pipe.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"stdout closed before a line with {needle!r}:\n{self.text}")
                self.text += chunk.decode(errors="replace")

    def rest(self, timeout: float = 5) -> str:
        """Everything until EOF (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and select.select([self.pipe], [], [], left)[0]:
            chunk = os.read(self.pipe.fileno(), 65536)
            if not chunk:
                break
            self.text += chunk.decode(errors="replace")
        return self.text


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A directory the postgres user can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="parley-run-"))
    base.chmod(0o755)
    yield base / "data"
    _pg_ctl(base / "data", "stop", "-m", "immediate")  # whatever a failed test left running
    shutil.rmtree(base, ignore_errors=True)


def _pg_ctl(data_dir: Path, *args: str) -> int:
    """pg_ctl on the launcher's cluster: 0 running, 3 no server (status)."""
    return subprocess.run(
        [str(find_bindir() / "pg_ctl"), "-D", str(data_dir / "postgres"), *args],
        capture_output=True,
        check=False,
        user="postgres" if os.geteuid() == 0 else None,
        cwd="/",
    ).returncode


def _launcher_env(data_dir: Path, api_port: int, pg_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_LOCAL_PG_PORT": str(pg_port),
        "API_PORT": str(api_port),
    }
    for name in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN", "LLM_API_KEY", "ADMIN_REGISTRATION_TOKEN"):
        env.pop(name, None)
    return env


def _launch(env: dict[str, str], stderr: int | IO[bytes], *, new_session: bool = False) -> Launcher:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=new_session,
    )


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_run_starts_postgres_and_api_then_stops_cleanly(data_dir: Path, postgres_server: object) -> None:
    api_port, pg_port = free_port(), free_port()
    process = _launch(_launcher_env(data_dir, api_port, pg_port), stderr=subprocess.STDOUT)
    output = Output(process)
    try:
        banner = output.wait_for("dashboard: ")
        # The banner comes only once the API listens: the URL it names answers right away.
        dashboard = httpx.get(re.findall(r"http://\S+", banner)[0], timeout=5)
        ready = _answering(f"http://127.0.0.1:{api_port}/ready", 200)
        output.wait_for("press Ctrl-C to stop")
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        print(output.rest())

    assert dashboard.status_code == 200
    assert ready.json()["schema_revision"] == "at_head"
    assert exit_code == 0, output.text
    assert "creating a local PostgreSQL cluster" in output.text
    assert f"http://localhost:{api_port}/" in output.text
    assert "first dashboard account: user 'admin'" in output.text
    assert "registration: off (set ADMIN_REGISTRATION_TOKEN" in output.text
    assert "bot not started: set TELEGRAM_BOT_TOKEN and LLM_API_KEY" in output.text
    assert "local PostgreSQL stopped" in output.text
    assert _pg_ctl(data_dir, "status") == 3  # "no server running"


def test_second_run_on_the_same_data_dir_refuses_and_leaves_the_first_alone(
    data_dir: Path, postgres_server: object
) -> None:
    api_port, pg_port = free_port(), free_port()
    env = _launcher_env(data_dir, api_port, pg_port)
    first = _launch(env, stderr=subprocess.STDOUT)
    output = Output(first)
    try:
        output.wait_for("press Ctrl-C to stop")
        second = subprocess.run(
            [sys.executable, "-m", "tools.run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert second.returncode == 1, second.stdout + second.stderr
        message = second.stdout
        assert "another `make run` is already running" in message
        assert f"pid {first.pid}" in message
        assert f"API port {api_port}" in message
        assert f"PostgreSQL port {pg_port}" in message
        assert f"data dir {data_dir}" in message
        assert "local PostgreSQL" not in message  # it did not touch the cluster
        assert first.poll() is None
        assert httpx.get(f"http://127.0.0.1:{api_port}/ready", timeout=5).status_code == 200
        cluster = LocalPostgres(data_dir=data_dir / "postgres", run_dir=data_dir / "run", port=pg_port)
        assert cluster.psql("SELECT 1", database="parley") == "1"

        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
        print(output.rest())
    assert _pg_ctl(data_dir, "status") == 3


def test_run_refuses_a_taken_api_port_before_starting_postgres(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        api_port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tools.run"],
            cwd=ROOT,
            env=_launcher_env(data_dir, api_port, free_port()),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot start: port {api_port} on 127.0.0.1 (API_PORT) is taken by another" in result.stdout
    assert not (data_dir / "postgres").exists()  # PostgreSQL was never started (nor created)


def test_ctrl_c_stops_everything_even_when_stdout_is_gone(data_dir: Path, postgres_server: object) -> None:
    """`make run | tee log`, then Ctrl-C: tee dies with the launcher's stdout; the launcher cleans up."""
    api_port, pg_port = free_port(), free_port()
    with tempfile.TemporaryFile() as stderr:
        process = _launch(_launcher_env(data_dir, api_port, pg_port), stderr, new_session=True)
        output = Output(process)
        try:
            output.wait_for("press Ctrl-C to stop")
            assert _pg_ctl(data_dir, "status") == 0
            output.pipe.close()  # tee is gone: every later write to stdout is EPIPE
            os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            exit_code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            stderr.seek(0)
            errors = stderr.read().decode(errors="replace")
            print(output.text, errors)

    assert exit_code == 0, errors
    assert "BrokenPipeError" not in errors  # neither the launcher nor the services hit the closed pipe
    assert "Logging error" not in errors
    assert _port_closed(api_port)
    assert _pg_ctl(data_dir, "status") == 3
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def test_run_without_postgres_binaries_says_what_to_do(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(tmp_path),
        "PG_BINDIR": str(tmp_path / "nothing"),
        "PATH": "/usr/bin:/bin",
        "API_PORT": str(free_port()),
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tools.run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "PostgreSQL server binaries (initdb, pg_ctl) not found" in result.stdout
    assert "set DATABASE_URL" in result.stdout


def test_make_help_shows_values_not_variables() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help", "COVERAGE_MIN=91"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    headings = [line for line in result.stdout.splitlines() if line.endswith(":")]
    lines = [line for line in result.stdout.splitlines() if line.startswith("  make ")]
    assert headings[0] == "Run, test and lint:"
    assert len(headings) >= 4
    assert "$(" not in result.stdout
    assert any(line.split()[1] == "test" and ">= 91%" in line for line in lines)
    assert any(line.split()[1] == "seed-demo" and "USERS=2000" in line for line in lines)
    # One column for every description, after the longest target name.
    assert len({line.index(line.split()[2]) for line in lines}) == 1
