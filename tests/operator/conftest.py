"""Operator fixtures beyond the shared ones of tests/support/operator_fixtures.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.operator import OperatorProcess


@pytest.fixture
def operator(start_operator: Callable[..., OperatorProcess], database_url: str) -> OperatorProcess:
    """One operator on this test's database, resyncing every 5 s so drift tests stay short."""
    return start_operator(database_url, OPERATOR_RESYNC_SECONDS="5")
