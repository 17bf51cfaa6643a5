"""The API's own documentation, /docs (Swagger UI) and /redoc (ReDoc), with no CDN.

FastAPI's default pages load their JavaScript and CSS from a CDN, so without Internet access they
are blank. These pages load vendored copies (``docs_assets/``, versions and sources in its README)
from ``/docs/static/``: a prefix of the management port (``management``), like the pages and
/openapi.json. The pages ask for no web fonts, no remote favicon and no online validator, and
their Content-Security-Policy lets the browser fetch from the page's own origin only: ReDoc 2
always shows a "by Redocly" logo from its vendor's CDN, which the policy refuses (the logo then
hides itself), so not even that request leaves the browser.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
ASSETS_DIR = Path(__file__).parent / "docs_assets"
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"

SWAGGER_JS = "swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui/swagger-ui.css"
REDOC_JS = "redoc/redoc.standalone.js"
FAVICON = "favicon.svg"

# Explicit types: mimetypes' answer for .js depends on the host's /etc/mime.types.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
TEXT = "text/plain; charset=utf-8"  # the licence texts, README and SHA256SUMS
# Revalidated on every load (a cheap 304 by ETag), so an upgrade of the vendored files applies at once.
ASSET_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {**ASSET_HEADERS, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}

# Same origin only. Scripts: the bundles and the page's own inline script (by hash), no eval; styles
# inline too (both UIs set style attributes, ReDoc injects <style> elements); ReDoc's search runs in
# a worker made from a blob: URL.
_CSP = (
    "default-src 'none'",
    "script-src {scripts}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    """The policy of a docs page: its own origin, plus exactly the inline scripts ``html`` contains."""
    scripts = ["'self'"]
    scripts += (
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(_CSP).format(scripts=" ".join(scripts))


def _page(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode("utf-8")
    page.headers.update({**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(html)})
    return page


class DocsStaticFiles(StaticFiles):
    """StaticFiles with fixed media types and revalidation on every load."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """The file, or a 304 when the browser's copy is current."""
        media_type = MEDIA_TYPES.get(Path(full_path).suffix, TEXT)
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers=ASSET_HEADERS,
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; ``app`` must be built with ``docs_url=None, redoc_url=None``."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("build the app with docs_url=None and redoc_url=None: these pages replace them")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{STATIC_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{STATIC_URL}/{FAVICON}",
            oauth2_redirect_url=None,  # HTTP Basic only: no OAuth2 flow to come back from
            # No badge asking a public validator about the schema.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )
        return _page(page)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{STATIC_URL}/{FAVICON}",
            with_google_fonts=False,  # the system's sans-serif instead of a font service
        )
        return _page(page)

    app.mount(STATIC_URL, DocsStaticFiles(directory=ASSETS_DIR), name="docs-static")
