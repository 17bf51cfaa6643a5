"""/docs (Swagger UI) and /redoc (ReDoc) render in real Chromium with every other host unreachable.

The API runs as in production, with a management port; the browser may reach 127.0.0.1 only, and
every request elsewhere is refused and recorded: the pages must render from the API's own files
and record none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from tests.e2e.support import ARTIFACTS, DESKTOP, api_process
from tools.localpg import LocalPostgres, free_port

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@dataclass(frozen=True)
class ManagementApi:
    """A `python -m parley_api` process with both ports."""

    public_url: str
    management_url: str


@pytest.fixture(scope="module")
def management_api(postgres_server: LocalPostgres, seeded_database: str) -> Iterator[ManagementApi]:
    public, management = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_server.url(seeded_database),
        "API_PORT": str(public),
        "API_MANAGEMENT_PORT": str(management),
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }
    api = ManagementApi(f"http://127.0.0.1:{public}", f"http://127.0.0.1:{management}")
    with api_process(env, f"{api.management_url}/ready"):
        yield api


# Recorded before any script of the page runs: what the Content-Security-Policy refused.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (event) => window.__violations.push(`${event.effectiveDirective} ${event.blockedURI}`));
"""
# ReDoc 2 always shows its vendor's logo from a CDN ("API docs by Redocly"); the policy refuses it.
REDOCLY_LOGO = "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class DocsPage:
    """A page whose requests all go through ``handle``: loopback passes, anything else is refused."""

    page: Page
    local: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            self.local.append(url)
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("internetdisconnected")

    def console(self, message: ConsoleMessage) -> None:
        """Errors, but neither a 404 nor the policy's refusals: ``violations`` lists those exactly."""
        text = message.text
        if message.type == "error" and not (
            text.startswith("Failed to load resource") or "Content Security Policy" in text
        ):
            self.errors.append(text)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations")
        return found

    def paths(self) -> set[str]:
        return {urlsplit(url).path for url in self.local}


@pytest.fixture
def docs_page(browser: Browser) -> Iterator[DocsPage]:
    context = browser.new_context(viewport=DESKTOP, locale="en-US", timezone_id="UTC")  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    page = context.new_page()
    docs = DocsPage(page)
    context.route("**/*", docs.handle)
    context.add_init_script(RECORD_VIOLATIONS)
    page.on("console", docs.console)
    page.on("pageerror", lambda exc: docs.errors.append(f"uncaught: {exc}"))
    try:
        yield docs
    finally:
        context.close()
    assert docs.errors == [], "the page logged errors"


def test_swagger_ui_renders_the_operations_offline(
    docs_page: DocsPage, management_api: ManagementApi
) -> None:
    page = docs_page.page

    page.goto(f"{management_api.management_url}/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Parley API")
    stats = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/api/v1/stats"])')
    expect(stats).to_be_visible()
    expect(stats.locator(".opblock-summary-description")).to_have_text("Statistics of a period")
    for path in ("/health", "/ready", "/api/v1/auth/register"):
        expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible()
    stats.locator(".opblock-summary-control").click()  # expand: the period parameter and its values
    expect(stats.locator('tr[data-param-name="period"]')).to_be_visible()
    expect(page.locator(".swagger-ui .scheme-container .authorize")).to_be_visible()  # HTTPBasic
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs-swagger-ui.png"), full_page=True)

    assert docs_page.refused == []
    assert docs_page.violations() == []
    assert docs_page.paths() >= {
        "/docs",
        "/docs/static/swagger-ui/swagger-ui.css",
        "/docs/static/swagger-ui/swagger-ui-bundle.js",
        "/openapi.json",
    }


def test_redoc_renders_the_api_offline(docs_page: DocsPage, management_api: ManagementApi) -> None:
    page = docs_page.page

    page.goto(f"{management_api.management_url}/redoc")

    expect(page.locator(".api-info h1")).to_contain_text("Parley API")
    stats = page.locator('[data-section-id$="/operation/get_stats_api_v1_stats_get"]')
    expect(stats.locator("h2")).to_have_text("Statistics of a period")
    expect(stats.get_by_text("/api/v1/stats", exact=True)).to_be_attached()  # the endpoint box
    expect(stats.locator(".redoc-json")).to_contain_text("total_users")  # the 200 response sample
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs-redoc.png"))
    page.locator("input.search-input").fill("statistics")  # the search index lives in a worker
    search = page.get_by_role("search")
    expect(search.get_by_role("menuitem", name="Statistics of a period")).to_be_visible()

    assert docs_page.refused == []
    assert docs_page.violations() == [REDOCLY_LOGO]
    assert docs_page.paths() >= {"/redoc", "/docs/static/redoc/redoc.standalone.js", "/openapi.json"}


def test_the_public_port_has_no_docs(docs_page: DocsPage, management_api: ManagementApi) -> None:
    for path in ("/docs", "/redoc", "/docs/static/swagger-ui/swagger-ui-bundle.js"):
        response = docs_page.page.goto(f"{management_api.public_url}{path}")
        assert response is not None
        assert response.status == 404, path

    assert docs_page.refused == []
