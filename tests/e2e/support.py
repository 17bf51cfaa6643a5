"""Pieces of the browser tests: the API as a process on a database of its own, Chromium's
settings, page errors and screenshots."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page

from parley_core.passwords import hash_password
from parley_testing.waiting import wait_for
from tests.e2e.seed import ACCOUNTS, seed_sql
from tools.localpg import LocalPostgres, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path(os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium"))
# Debian's Chromium, headless and quiet: no sandbox (root in CI), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 360, "height": 740}


def unavailable(reason: str) -> None:
    """Skip on a laptop without Chromium; fail under CI, where a skip would hide a gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Chromium is required under CI: {reason}")
    pytest.skip(reason)


@dataclass
class PageErrors:
    """Console errors and uncaught exceptions of the pages a test opened (CSP violations included)."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        """Keep errors; the expected failed requests (401, 429, aborted) are the tests' business."""
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.messages.append(message.text)


NewPage = Callable[..., Page]


def screenshot(page: Page, name: str, *, full_page: bool = True, element: Locator | None = None) -> Path:
    """Save a screenshot of the current state under tests/artifacts/ (git-ignored): the page, or only
    ``element`` (one panel) when given, cut from the full page so the sticky top bar stays out of it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    if element is None:
        page.screenshot(path=str(path), full_page=full_page)
        return path
    box: dict[str, float] = element.evaluate(
        """(node) => {
            const r = node.getBoundingClientRect();
            return { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height };
        }"""
    )
    page.screenshot(path=str(path), full_page=True, clip=box)  # type: ignore[arg-type]
    return path


@dataclass(frozen=True)
class RunningApi:
    """A `python -m parley_api` process and the database it serves."""

    base_url: str
    database: str
    server: LocalPostgres

    def stats(self, period: str, account: str = "analyst", window: str | None = None) -> httpx.Response:
        """GET /api/v1/stats as ``account`` (one of the seeded accounts), in ``window`` mode if given."""
        params = {"period": period} if window is None else {"period": period, "window": window}
        return httpx.get(f"{self.base_url}/api/v1/stats", params=params, auth=(account, ACCOUNTS[account]))

    def sql(self, statement: str) -> str:
        """Run SQL on the served database as the superuser."""
        return self.server.psql(statement, database=self.database)


def copy_database(server: LocalPostgres, template: str, name: str, *, seed: bool) -> str:
    database = f"{name}_{os.getpid()}"
    server.create_database(database, template=template)
    accounts = ", ".join(
        f"('{username}', '{hash_password(password, rounds=4)}', 'registration')"
        for username, password in ACCOUNTS.items()
    )
    insert = f"INSERT INTO api_users (username, password_hash, source) VALUES {accounts}"  # noqa: S608
    server.psql(insert, database=database)
    if seed:
        server.psql(seed_sql(), database=database)
    return database


@contextlib.contextmanager
def api_process(env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m parley_api` with ``env``, once ``ready_url`` answers 200; terminated afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "parley_api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"parley_api exited {process.returncode} before it was ready at {ready_url}"
                )
            return httpx.get(ready_url, timeout=1).status_code == 200

        wait_for(
            ready,
            f"parley_api ready at {ready_url}",
            timeout=30,
            interval=0.1,
            retry_on=(httpx.TransportError,),
        )
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def serve(server: LocalPostgres, database: str, **env: str) -> Iterator[RunningApi]:
    port = free_port()
    process_env = {
        **os.environ,
        "DATABASE_URL": server.url(database),
        "API_PORT": str(port),
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    with api_process(process_env, f"{base}/ready"):
        yield RunningApi(base_url=base, database=database, server=server)
