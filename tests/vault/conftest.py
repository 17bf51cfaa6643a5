"""Shared pieces of the Vault tests: a guard that no secret value reaches any captured log line.

The operator's fixtures (its CRD on the control plane, `python -m parley_operator`) are reused from
tests/operator so the operator runs here exactly as it does there.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.operator.conftest import apiuser_crd, cluster, start_operator  # noqa: F401 - fixtures


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


@pytest.fixture(autouse=True)
def log_guard(log_output: io.StringIO, caplog: pytest.LogCaptureFixture) -> Iterator[LogGuard]:
    """Every Vault test runs with DEBUG logs captured (urllib3 included) and is checked for leaks."""
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="urllib3")
    guard = LogGuard(log_output, caplog)
    yield guard
    guard.assert_clean()
