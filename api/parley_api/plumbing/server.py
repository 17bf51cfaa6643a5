"""Running the app under uvicorn with a Kubernetes-friendly shutdown.

On SIGTERM the process first marks itself draining (/ready turns 503) and keeps serving for
SHUTDOWN_DELAY_SECONDS so endpoints and ingresses stop routing to it; then uvicorn stops accepting
connections, waits up to SHUTDOWN_TIMEOUT_SECONDS for in-flight requests, and the lifespan closes
the pool. A second signal skips the delay.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from parley_api.state import state_of
from parley_core.logging import get_logger

log = get_logger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first exit signal drains before shutting down."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI, delay_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay = delay_seconds
        self._signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Mark draining, wait the configured delay, then let uvicorn shut down."""
        state = state_of(self._app)
        if state is not None:
            state.draining = True
        if self._signalled or self._delay <= 0:
            log.info("shutdown_signal", signal=signal.Signals(sig).name, delay_seconds=0)
            self._shut_down(sig, frame)
            return
        self._signalled = True
        log.info("shutdown_signal", signal=signal.Signals(sig).name, delay_seconds=self._delay)
        asyncio.get_event_loop().call_later(self._delay, self._shut_down, sig, frame)

    def _shut_down(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown, which would end the process with
        # -SIGTERM; a completed graceful shutdown exits 0 instead.
        self._captured_signals.clear()


def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    management_port: int | None = None,
    delay_seconds: float,
    timeout_seconds: float,
) -> None:
    """Serve ``app`` until a signal (on ``management_port`` too, when given); returns when every
    in-flight request has finished."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our structlog handlers are already installed
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=int(timeout_seconds),
    )
    server = DrainingServer(config, app=app, delay_seconds=delay_seconds)
    if management_port is None:
        server.run()
        return
    # One server, two listening sockets: the app tells the ports apart (management.py).
    sockets: list[socket.socket] = []
    try:
        for each in (port, management_port):  # one at a time: the first is closed if the second fails
            sockets.append(_bind(host, each))
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


def _bind(host: str, port: int) -> socket.socket:
    # uvicorn's Config.bind_socket does the same but exits the process on a taken port; this
    # raises OSError naming the port, which `python -m parley_api` reports in one line.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"port {port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock
