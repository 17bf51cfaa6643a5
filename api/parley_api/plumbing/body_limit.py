"""A ceiling on request bodies: a body larger than API_MAX_BODY_BYTES is refused with 413, unread.

Every body this API accepts is small (a registration is a few hundred bytes), so a multi-megabyte
upload can only cost memory and CPU. The declared Content-Length is checked before the body is
read; a body sent without one (chunked) is counted as it arrives and cut off at the limit.
FastAPI's own `max_body_size` is not used: it answers a declared oversize with a plain-text
"Content Too Large", and every error of this API is JSON with a `detail` that names the limit.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """ASGI middleware enforcing the body limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        too_large = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True  # the app sees the client go; its answer is replaced by the 413
                    return {"type": "http.disconnect"}
            return message

        async def replacing_send(message: Message) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, receive, send)

        await self.app(scope, limited_receive, replacing_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=413,
            headers={"connection": "close"},
        )
        await response(scope, receive, send)
