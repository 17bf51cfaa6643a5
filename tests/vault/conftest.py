"""Fixtures of the Vault tests: every test is checked by a LogGuard (tests/vault/support.py).

The operator's fixtures (its CRD on the control plane, `python -m parley_operator`) come from
tests/support/operator_fixtures.py, as in tests/operator, so the operator runs here exactly as there.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.vault.support import LogGuard


@pytest.fixture(autouse=True)
def log_guard(log_output: io.StringIO, caplog: pytest.LogCaptureFixture) -> Iterator[LogGuard]:
    """Every Vault test runs with DEBUG logs captured (urllib3 included) and is checked for leaks."""
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="urllib3")
    guard = LogGuard(log_output, caplog)
    yield guard
    guard.assert_clean()
