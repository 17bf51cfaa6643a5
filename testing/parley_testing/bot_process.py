"""`python -m parley_bot` as a real process against the doubles: started, killed, stopped, read.

For tests and benchmarks that break the bot on purpose (kill -9, SIGTERM, a database outage) and
then look at what the user received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping

from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(telegram: TelegramDouble, llm: LLMDouble) -> dict[str, str]:
    """The environment variables that point a bot at these doubles."""
    return {
        "TELEGRAM_API_URL": telegram.url,
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "LLM_BASE_URL": llm.url,
        "LLM_API_KEY": llm.api_key,
    }


def bot_process_environment(
    database_url: str, telegram: TelegramDouble, llm: LLMDouble, **extra: str
) -> dict[str, str]:
    """The production defaults, pointed at the doubles and ``database_url``, plus ``extra``."""
    return {
        **os.environ,
        **bot_environment(telegram, llm),
        "DATABASE_URL": database_url,
        "BOT_PORT": str(free_port()),
        "STREAM_REPLIES": "off",
        "TELEGRAM_POLLING_TIMEOUT_SECONDS": "1",
        "LOG_FORMAT": "json",
        **extra,
    }


class BotProcess:
    """One run of the bot process; its output is collected until it exits."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self._output: list[bytes] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """Its health/metrics port."""
        return int(self.env["BOT_PORT"])

    async def start(self, telegram: TelegramDouble, *, timeout: float = 60) -> None:
        """Spawn it and wait for its first getUpdates call (polling) or setWebhook (webhook)."""
        marker = "setWebhook" if self.env.get("BOT_MODE") == "webhook" else "getUpdates"
        before = sum(1 for method, _ in telegram.calls if method == marker)
        process = await self.spawn()

        def started() -> bool:
            return process.returncode is not None or (
                sum(1 for method, _ in telegram.calls if method == marker) > before
            )

        await telegram.wait_for(started, timeout=timeout)
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}:\n{self.output}")

    async def spawn(self) -> asyncio.subprocess.Process:
        """Spawn it without waiting for anything."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "parley_bot",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        return self.process

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self._output.append(chunk)

    @property
    def output(self) -> str:
        """Everything it printed so far (JSON log lines)."""
        return b"".join(self._output).decode(errors="replace")

    async def kill(self) -> None:
        """kill -9: no drain, no confirmation, no goodbye."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self._finish()

    async def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self._finish(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode

    async def _finish(self) -> None:
        assert self.process is not None
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def __aenter__(self) -> BotProcess:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill()
