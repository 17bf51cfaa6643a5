"""Pieces of the Vault tests: a guard that no secret value reaches any captured log line, and
waiting for an API process that reads its settings from Vault."""

from __future__ import annotations

import io
import subprocess

import httpx
import pytest

from parley_testing.waiting import wait_for


class LogGuard:
    """Collects the secret values a test handles; after the test none may appear in captured logs."""

    def __init__(self, output: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
        self.output = output
        self.caplog = caplog
        self.values: set[str] = set()

    def watch(self, *values: str) -> None:
        """Values that must never be logged (secrets, passwords, service-account and Vault tokens)."""
        self.values.update(v for v in values if v)

    def lines(self) -> list[str]:
        """Every captured line: the JSON log stream plus caplog's records of setup and call."""
        records = [*self.caplog.get_records("setup"), *self.caplog.get_records("call")]
        return [
            *self.output.getvalue().splitlines(),
            *(record.getMessage() for record in records),
            *(str(record.args) for record in records if record.args),
        ]

    def assert_clean(self, *texts: str) -> None:
        """No watched value in any captured log line, nor in ``texts`` (error messages, process output)."""
        leaked = sorted(
            {where for value in self.values for where in (*self.lines(), *texts) if value in where}
        )
        assert not leaked, f"{len(leaked)} captured line(s) contain a secret value"

    def count(self, prefix: str) -> int:
        """How many caplog records of the test start with ``prefix`` (urllib3's retry lines)."""
        return sum(1 for r in self.caplog.get_records("call") if r.getMessage().startswith(prefix))


def wait_api_ready(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Wait until the API process answers 200 at ``url``; fail at once if it exits."""

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode} before it was ready")
        return httpx.get(url, timeout=1).status_code == 200

    wait_for(ready, f"{url} to be ready", timeout=timeout, interval=0.1, retry_on=(httpx.TransportError,))
