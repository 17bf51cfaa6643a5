"""Running the app under uvicorn with a Kubernetes-friendly shutdown.

On SIGTERM the process first marks itself draining (/ready turns 503) and keeps serving for
SHUTDOWN_DELAY_SECONDS so endpoints and ingresses stop routing to it; then uvicorn stops accepting
connections, waits up to SHUTDOWN_TIMEOUT_SECONDS for in-flight requests, and the lifespan closes
the pool. A second signal skips the delay; a further SIGINT stops waiting for in-flight requests.
A completed graceful shutdown exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from parley_api.state import state_of
from parley_core.logging import get_logger

log = get_logger(__name__)

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server with signal handling of its own, whose first exit signal drains first."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI, delay_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay = delay_seconds
        self._signalled = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT on the event loop while ``serve()`` runs.

        This replaces uvicorn's own handling, which raises the caught signal again once the server
        has stopped: the process would then end by SIGTERM even after a clean shutdown.
        """
        if threading.current_thread() is not threading.main_thread():  # signals reach the main one only
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in EXIT_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in EXIT_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        """Mark draining, wait the configured delay, then let uvicorn shut down."""
        state = state_of(self._app)
        if state is not None:
            state.draining = True
        if self._signalled or self._delay <= 0:
            log.info("shutdown_signal", signal=sig.name, delay_seconds=0)
            self._stop(sig)
            return
        self._signalled = True
        log.info("shutdown_signal", signal=sig.name, delay_seconds=self._delay)
        asyncio.get_running_loop().call_later(self._delay, self._stop, sig)

    def _stop(self, sig: signal.Signals) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # already stopping: a further Ctrl+C stops waiting for requests
        else:
            self.should_exit = True


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
