"""Dashboard end-to-end fixtures: Debian's Chromium driven by Playwright, real API processes.

Each API is `python -m parley_api` on a database of its own (copied from the migrated template),
seeded with SQL whose figures are known. The browser is Debian's `chromium` package, never a
Playwright download: `make browser-deps` installs it. Without it the tests skip here and fail under CI.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from parley_core.passwords import hash_password
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


def _unavailable(reason: str) -> None:
    """Skip on a laptop without Chromium; fail under CI, where a skip would hide a gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Chromium is required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for this module (Playwright's sync API: the tests are plain functions)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageErrors:
    """Console errors and uncaught exceptions of the pages a test opened (CSP violations included)."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        """Keep errors; the expected failed requests (401, 429, aborted) are the tests' business."""
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.messages.append(message.text)


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Open a page in a fresh context (own sessionStorage); fails the test on any page error."""
    errors = PageErrors()
    contexts = []

    def open_page(*, viewport: dict[str, int] | None = None, color_scheme: str = "dark") -> Page:
        context = browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            color_scheme=color_scheme,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", errors.console)
        page.on("pageerror", lambda exc: errors.messages.append(f"uncaught: {exc}"))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors.messages == [], "the page logged errors"


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of the current state under tests/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@dataclass(frozen=True)
class RunningApi:
    """A `python -m parley_api` process and the database it serves."""

    base_url: str
    database: str
    server: LocalPostgres

    def stats(self, period: str, account: str = "analyst") -> httpx.Response:
        """GET /api/v1/stats as ``account`` (one of the seeded accounts)."""
        return httpx.get(
            f"{self.base_url}/api/v1/stats", params={"period": period}, auth=(account, ACCOUNTS[account])
        )

    def sql(self, statement: str) -> str:
        """Run SQL on the served database as the superuser."""
        return self.server.psql(statement, database=self.database)


def _database(server: LocalPostgres, template: str, name: str, *, seed: bool) -> str:
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
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"parley_api did not become ready at {ready_url}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _serve(server: LocalPostgres, database: str, **env: str) -> Iterator[RunningApi]:
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


@pytest.fixture(scope="module")
def seeded_database(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A database with the known figures of tests/e2e/seed.py and the test accounts."""
    database = _database(postgres_server, migrated_template, "e2e_seeded", seed=True)
    yield database
    postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def api(postgres_server: LocalPostgres, seeded_database: str) -> Iterator[RunningApi]:
    """The API on the seeded database, with a rate limit generous enough for a whole test module."""
    yield from _serve(postgres_server, seeded_database, STATS_API_RATE_LIMIT="1000/minute")


@pytest.fixture(scope="module")
def limited_api(postgres_server: LocalPostgres, seeded_database: str) -> Iterator[RunningApi]:
    """The API on the seeded database allowing 2 stats calls a minute per user, previews off."""
    yield from _serve(
        postgres_server, seeded_database, STATS_API_RATE_LIMIT="2/minute", STATS_PREVIEWS_ENABLED="false"
    )


@pytest.fixture(scope="module")
def empty_api(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[RunningApi]:
    """The API on a database with accounts but no users or messages at all."""
    database = _database(postgres_server, migrated_template, "e2e_empty", seed=False)
    yield from _serve(postgres_server, database, STATS_API_RATE_LIMIT="1000/minute")
    postgres_server.drop_database(database)
