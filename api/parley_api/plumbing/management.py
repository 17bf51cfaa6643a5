"""The management port: probes, metrics and the API's own documentation, kept off the public port.

The public port is what an Ingress routes to the Internet; `/health` (pool statistics, error
types), `/metrics` and the OpenAPI documentation do not belong there. When API_MANAGEMENT_PORT is
set, the process listens on both ports and this gate answers 404 for the internal paths on the
public port and for everything else on the management port, so neither leaks into the other.
Without it (a laptop, `make run`), one port serves everything.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Served on the management port only (when there is one).
INTERNAL_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json"})
INTERNAL_PREFIXES = ("/docs/", "/redoc/")


def is_internal(path: str) -> bool:
    """Whether ``path`` is served on the management port."""
    return path in INTERNAL_PATHS or path.startswith(INTERNAL_PREFIXES)


class ManagementPortGate:
    """ASGI middleware: each path on its port, a 404 anywhere else."""

    def __init__(self, app: ASGIApp, *, management_port: int | None) -> None:
        self.app = app
        self.management_port = management_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.management_port is None:
            await self.app(scope, receive, send)
            return
        server: Any = scope.get("server")
        on_management = bool(server) and server[1] == self.management_port
        if on_management != is_internal(scope["path"]):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
