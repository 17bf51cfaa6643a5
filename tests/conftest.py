"""Fixtures shared by every test: real PostgreSQL, settings, log capture."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from parley_core import logging as parley_logging

pytest_plugins = [
    "tests.support.postgres",
    "parley_testing.kube",
    "tests.support.vault_server",
    "tests.support.operator_fixtures",
]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read the developer's .env or Vault/DB variables."""
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_SECRET_PATH", "DATABASE_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line written during the test, rendered as JSON lines (redaction included)."""
    stream = io.StringIO()
    parley_logging.configure_logging(level="DEBUG", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        parley_logging.secrets.clear()
