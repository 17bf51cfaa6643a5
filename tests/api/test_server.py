"""The real process: `python -m parley_api` drains on SIGTERM and exits cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx

from parley_testing.waiting import wait_for
from tools.localpg import free_port


def _wait_ready(url: str) -> httpx.Response:
    """The first 200 of ``url``."""
    return wait_for(lambda: _ok(httpx.get(url, timeout=1)), f"{url} to be ready", timeout=30, interval=0.1)


def _ok(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None


def test_sigterm_drains_then_exits_zero(database_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_PORT": str(port),
        "SHUTDOWN_DELAY_SECONDS": "1.5",
        "LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "parley_api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ready")
        process.send_signal(signal.SIGTERM)

        def changed() -> httpx.Response | None:
            response = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
            return None if response.status_code == 200 else response

        # The first answer other than 200, while the 1.5 s shutdown delay keeps the port open.
        during = wait_for(changed, "/ready to change after SIGTERM", timeout=30, interval=0.05)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read() if process.stdout else ""

    assert during.status_code == 503
    assert during.json()["reasons"] == ["shutting down"]
    assert exit_code == 0
    for step in ("shutdown_signal", "api_stopping", "api_stopped"):
        assert step in output


def test_bad_configuration_exits_2_naming_the_variable(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "API_PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "parley_api"], env=env, capture_output=True, check=False, text=True, timeout=30
    )

    assert result.returncode == 2
    assert "API_PORT" in result.stderr


def test_the_management_port_serves_the_internals_and_the_public_port_does_not(database_url: str) -> None:
    public, management = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_PORT": str(public),
        "API_MANAGEMENT_PORT": str(management),
        "LOG_FORMAT": "json",
    }
    process = subprocess.Popen([sys.executable, "-m", "parley_api"], env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{management}/ready")
        on_management = {path: httpx.get(f"http://127.0.0.1:{management}{path}", timeout=5) for path in PATHS}
        on_public = {path: httpx.get(f"http://127.0.0.1:{public}{path}", timeout=5) for path in PATHS}
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    internal = ["/health", "/ready", "/metrics", "/docs", "/openapi.json"]
    public_paths = ["/", "/api/v1/stats?period=day"]
    assert {p: on_management[p].status_code for p in internal} == dict.fromkeys(internal, 200)
    assert {p: on_public[p].status_code for p in internal} == dict.fromkeys(internal, 404)
    assert {p: on_management[p].status_code for p in public_paths} == dict.fromkeys(public_paths, 404)
    assert on_public["/"].status_code == 200  # the dashboard
    assert on_public["/api/v1/stats?period=day"].status_code == 401  # the public API, behind Basic auth
    assert "http_requests_total" in on_management["/metrics"].text
    assert exit_code == 0


PATHS = ["/health", "/ready", "/metrics", "/docs", "/openapi.json", "/", "/api/v1/stats?period=day"]


def test_a_taken_management_port_exits_2_naming_it(database_url: str) -> None:
    """A port already in use is one line on stderr and exit 2, not a traceback; nothing is left bound."""
    public, management = free_port(), free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", management))
        taken.listen()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(public),
            "API_MANAGEMENT_PORT": str(management),
        }
        command = [sys.executable, "-m", "parley_api"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1: port {management}" in result.stderr
    assert "Traceback" not in result.stderr
    with socket.socket() as again:
        again.bind(("127.0.0.1", public))  # the public socket was closed with the failure
