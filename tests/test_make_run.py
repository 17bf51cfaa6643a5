"""`make run`'s launcher end to end: embedded PostgreSQL, migrations, API ready, clean Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tools.localpg import find_bindir, free_port

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(url: str, status: int, deadline: float) -> httpx.Response:
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered {status}")
        time.sleep(0.2)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A directory the postgres user can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="parley-run-"))
    base.chmod(0o755)
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


def test_run_starts_postgres_and_api_then_stops_cleanly(data_dir: Path, postgres_server: object) -> None:
    api_port, pg_port = free_port(), free_port()
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_LOCAL_PG_PORT": str(pg_port),
        "API_PORT": str(api_port),
    }
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = _wait_for(f"http://127.0.0.1:{api_port}/ready", 200, time.monotonic() + 90)
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read() if process.stdout else ""
        print(output)

    assert ready.json()["schema_revision"] == "at_head"
    assert exit_code == 0, output
    assert "creating a local PostgreSQL cluster" in output
    assert f"http://localhost:{api_port}/" in output
    assert "bot not started: set TELEGRAM_BOT_TOKEN and LLM_API_KEY" in output
    assert "local PostgreSQL stopped" in output
    status = subprocess.run(
        [str(find_bindir() / "pg_ctl"), "-D", str(data_dir / "postgres"), "status"],
        capture_output=True,
        check=False,
        user="postgres" if os.geteuid() == 0 else None,
    )
    assert status.returncode == 3  # "no server running"


def test_run_without_postgres_binaries_says_what_to_do(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(tmp_path),
        "PG_BINDIR": str(tmp_path / "nothing"),
        "PATH": "/usr/bin:/bin",
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
