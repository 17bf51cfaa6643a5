"""The dashboard page and its static files: served, locked down by headers, cached by content hash."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from parley_api.dashboard.assets import AssetError, build_manifest, render_template
from parley_api.dashboard.routes import IMMUTABLE

ASSET_URL = re.compile(r'(?:src|href)="(static/[^"]+)"')


async def test_page_is_served_with_security_headers_and_no_cache(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    csp = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    page = response.text
    assert '<script type="module" src="static/app.' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline scripts"
    assert " style=" not in page, "no inline styles"
    assert "{{" not in page


async def test_every_asset_of_the_page_resolves_with_immutable_caching(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    urls = ASSET_URL.findall(page)
    assert {url.split("/")[1].split(".")[0] for url in urls} == {"favicon", "dashboard", "app"}

    for url in urls:
        response = await client.get(f"/{url}")
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["etag"] == f'"{url.removeprefix("static/")}"'
    css = await client.get(f"/{next(url for url in urls if url.endswith('.css'))}")
    assert css.headers["content-type"] == "text/css; charset=utf-8"


async def test_module_imports_point_at_hashed_files_that_resolve(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    app_url = next(url for url in ASSET_URL.findall(page) if url.endswith(".js"))
    app = await client.get(f"/{app_url}")
    assert app.headers["content-type"] == "text/javascript; charset=utf-8"

    imports = set(re.findall(r'from "\./([^"]+)"', app.text))
    assert {name.split(".")[0] for name in imports} == {"api", "chart", "format"}
    for name in imports:
        assert re.fullmatch(r"[a-z]+\.[0-9a-f]{12}\.js", name)
        assert (await client.get(f"/static/{name}")).status_code == 200


async def test_revalidation_with_the_etag_is_not_modified(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    url = ASSET_URL.findall(page)[0]
    etag = (await client.get(f"/{url}")).headers["etag"]

    response = await client.get(f"/{url}", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.js",
        "/static/app.000000000000.js",
        "/static/nothing.css",
        "/static/..%2Froutes.py",
        "/static/",
    ],
)
async def test_unknown_or_unhashed_static_files_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert "immutable" not in response.headers.get("cache-control", "")


async def test_dashboard_routes_stay_out_of_the_openapi_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/static")]


def test_a_changed_import_changes_the_importers_hash(tmp_path: Path) -> None:
    (tmp_path / "leaf.js").write_text("export const x = 1;\n")
    (tmp_path / "main.js").write_text('import { x } from "./leaf.js";\nconsole.log(x);\n')
    before = build_manifest(tmp_path)
    (tmp_path / "leaf.js").write_text("export const x = 2;\n")
    after = build_manifest(tmp_path)

    assert before.hashed_names["main.js"] != after.hashed_names["main.js"]
    main = after.files[after.hashed_names["main.js"]].body.decode()
    assert f'from "./{after.hashed_names["leaf.js"]}"' in main


def test_inconsistent_static_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import "./b.js";\n')
    (tmp_path / "b.js").write_text('import "./a.js";\n')
    with pytest.raises(AssetError, match="import cycle"):
        build_manifest(tmp_path)

    (tmp_path / "b.js").write_text('import "./missing.js";\n')
    with pytest.raises(AssetError, match=r"imports \./missing\.js"):
        build_manifest(tmp_path)

    (tmp_path / "b.js").write_text("")
    manifest = build_manifest(tmp_path)
    with pytest.raises(AssetError, match=r"nothing\.css"):
        render_template('<link href="{{ asset:nothing.css }}">', manifest)
    assert render_template("{{ asset:b.js }}", manifest) == f"static/{manifest.hashed_names['b.js']}"
