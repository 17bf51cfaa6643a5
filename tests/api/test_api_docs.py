"""/docs and /redoc load only the API's own vendored assets, on the management port only."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from parley_api.main import create_app
from parley_api.plumbing import api_docs
from tests.support.api import make_settings, running_client

MANAGEMENT_PORT = 9090
# Every URL a page refers to: attributes, Swagger UI's `url: '…'` and ReDoc's spec-url.
REFERENCE = re.compile(r"""(?:\b(?:src|href|spec-url)=|\burl:\s*)["'](?P<url>[^"']*)["']""")
ASSETS = {
    "/docs/static/swagger-ui/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "/docs/static/swagger-ui/swagger-ui.css": "text/css; charset=utf-8",
    "/docs/static/redoc/redoc.standalone.js": "text/javascript; charset=utf-8",
    "/docs/static/favicon.svg": "image/svg+xml",
    "/docs/static/swagger-ui/LICENSE": "text/plain; charset=utf-8",
}


@dataclass
class Ports:
    """One app seen through its public port and its management port."""

    public: httpx.AsyncClient
    management: httpx.AsyncClient


@pytest.fixture
async def ports(database_url: str) -> AsyncIterator[Ports]:
    app = create_app(make_settings(database_url, api_management_port=MANAGEMENT_PORT))
    async with running_client(app) as public:
        management = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://testserver:{MANAGEMENT_PORT}"
        )
        async with management:
            yield Ports(public=public, management=management)


def referenced_urls(html: str) -> list[str]:
    return [match["url"] for match in REFERENCE.finditer(html)]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            "/docs",
            {
                "/docs/static/swagger-ui/swagger-ui.css",
                "/docs/static/swagger-ui/swagger-ui-bundle.js",
                "/docs/static/favicon.svg",
                "/openapi.json",
            },
        ),
        ("/redoc", {"/docs/static/redoc/redoc.standalone.js", "/docs/static/favicon.svg", "/openapi.json"}),
    ],
)
async def test_each_page_refers_only_to_local_files(ports: Ports, page: str, expected: set[str]) -> None:
    response = await ports.management.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    urls = referenced_urls(response.text)
    assert set(urls) == expected
    assert all(url.startswith("/") and not url.startswith("//") for url in urls)
    # Nothing absolute anywhere in the page: no CDN, no font service, no remote favicon.
    assert "://" not in response.text


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy as directive → its sources."""
    parsed = {}
    for directive in policy.split(";"):
        name, _, sources = directive.strip().partition(" ")
        parsed[name] = sources
    return parsed


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_each_page_lets_the_browser_fetch_from_its_own_origin_only(ports: Ports, page: str) -> None:
    response = await ports.management.get(page)
    policy = directives(response.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)

    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == policy["img-src"].removesuffix(" data:") == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "http" not in response.headers["content-security-policy"]
    # Scripts: the page's origin and exactly its inline script (by hash), nothing unsafe.
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline]
    assert policy["script-src"].split() == ["'self'", *hashes]
    assert len(inline) == (1 if page == "/docs" else 0)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_swagger_ui_asks_no_online_validator(ports: Ports) -> None:
    assert '"validatorUrl": null,' in (await ports.management.get("/docs")).text


async def test_every_referenced_asset_answers_with_its_type(ports: Ports) -> None:
    for path, media_type in ASSETS.items():
        response = await ports.management.get(path)

        assert response.status_code == 200, path
        assert response.headers["content-type"] == media_type, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
        assert len(response.content) == int(response.headers["content-length"]) > 0
    bundle = await ports.management.get("/docs/static/swagger-ui/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    redoc = await ports.management.get("/docs/static/redoc/redoc.standalone.js")
    assert b"Redoc" in redoc.content


async def test_an_asset_is_revalidated_by_etag(ports: Ports) -> None:
    first = await ports.management.get("/docs/static/swagger-ui/swagger-ui.css")
    again = await ports.management.get(
        "/docs/static/swagger-ui/swagger-ui.css", headers={"if-none-match": first.headers["etag"]}
    )

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    ["/docs/static/nope.js", "/docs/static/", "/docs/static/../main.py", "/docs/static/%2e%2e/main.py"],
)
async def test_nothing_else_is_served_from_the_static_prefix(ports: Ports, path: str) -> None:
    assert (await ports.management.get(path)).status_code == 404


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", *ASSETS])
async def test_the_public_port_serves_neither_the_pages_nor_their_assets(ports: Ports, path: str) -> None:
    response = await ports.public.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_the_public_dashboard_is_still_on_the_public_port(ports: Ports) -> None:
    assert (await ports.public.get("/")).status_code == 200
    assert (await ports.management.get("/")).status_code == 404


async def test_without_a_management_port_one_port_serves_the_docs(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", *ASSETS):
        assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_a_root_path_prefixes_every_url(api_app: FastAPI, page: str) -> None:
    # Behind a proxy that strips a prefix, the prefix reaches the page as scope["root_path"].
    transport = httpx.ASGITransport(app=api_app, root_path="/internal")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(f"/internal{page}")

    assert response.status_code == 200
    urls = referenced_urls(response.text)
    assert urls
    assert all(url.startswith("/internal/") for url in urls)


def test_the_vendored_files_are_the_recorded_ones() -> None:
    """SHA256SUMS (docs_assets/README.md) lists every vendored file, byte for byte."""
    recorded = {}
    for line in (api_docs.ASSETS_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    vendored = {
        str(path.relative_to(api_docs.ASSETS_DIR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for directory in ("swagger-ui", "redoc")
        for path in sorted((api_docs.ASSETS_DIR / directory).iterdir())
    }

    assert vendored == recorded
    readme = (api_docs.ASSETS_DIR / "README.md").read_text()
    assert f"| `swagger-ui-dist` | {api_docs.SWAGGER_UI_VERSION} |" in readme
    assert f"| `redoc` | {api_docs.REDOC_VERSION} |" in readme
