"""GET / (the dashboard page) and GET /static/{name} (its content-hashed files)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from parley_api.dashboard.assets import dashboard_files

router = APIRouter(tags=["dashboard"], include_in_schema=False)

# The page runs only its own module and talks only to its own origin: no inline script or style,
# no framing, no form posts anywhere (the login form is handled by the script).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/", summary="Dashboard page")
async def dashboard_page() -> Response:
    """The single page of the dashboard; never cached, so a deploy's new asset names apply at once."""
    return Response(
        content=dashboard_files().page,
        media_type="text/html; charset=utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
        },
    )


@router.get("/static/{name}", summary="Dashboard static file")
async def dashboard_asset(name: str, request: Request) -> Response:
    """A static file by its content-hashed name, cacheable forever; any other name is 404."""
    asset = dashboard_files().manifest.files.get(name)
    if asset is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="no such static file")
    headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=asset.body, media_type=asset.media_type, headers=headers)
