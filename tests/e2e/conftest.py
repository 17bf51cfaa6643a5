"""Dashboard end-to-end fixtures: Debian's Chromium driven by Playwright, real API processes.

Each API is `python -m parley_api` on a database of its own (copied from the migrated template),
seeded with SQL whose figures are known. The browser is Debian's `chromium` package, never a
Playwright download: `make browser-deps` installs it. Without it the tests skip here and fail under CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    NewPage,
    PageErrors,
    RunningApi,
    copy_database,
    serve,
    unavailable,
)
from tools.localpg import LocalPostgres


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for this module (Playwright's sync API: the tests are plain functions)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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


@pytest.fixture(scope="module")
def seeded_database(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A database with the known figures of tests/e2e/seed.py and the test accounts."""
    database = copy_database(postgres_server, migrated_template, "e2e_seeded", seed=True)
    yield database
    postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def api(postgres_server: LocalPostgres, seeded_database: str) -> Iterator[RunningApi]:
    """The API on the seeded database, with a rate limit generous enough for a whole test module."""
    yield from serve(postgres_server, seeded_database, STATS_API_RATE_LIMIT="1000/minute")


@pytest.fixture(scope="module")
def limited_api(postgres_server: LocalPostgres, seeded_database: str) -> Iterator[RunningApi]:
    """The API on the seeded database allowing 2 stats calls a minute per user, previews off."""
    yield from serve(
        postgres_server, seeded_database, STATS_API_RATE_LIMIT="2/minute", STATS_PREVIEWS_ENABLED="false"
    )


@pytest.fixture(scope="module")
def empty_api(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[RunningApi]:
    """The API on a database with accounts but no users or messages at all."""
    database = copy_database(postgres_server, migrated_template, "e2e_empty", seed=False)
    yield from serve(postgres_server, database, STATS_API_RATE_LIMIT="1000/minute")
    postgres_server.drop_database(database)
