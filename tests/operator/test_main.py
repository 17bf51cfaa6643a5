"""parley_operator.__main__: kopf settings from OperatorSettings, and a bad configuration exiting 2."""

from __future__ import annotations

import os
import subprocess
import sys

from parley_core.settings import OperatorSettings, load_settings
from parley_operator.__main__ import kopf_settings


def test_kopf_settings_use_parley_names_and_watch_timeouts() -> None:
    settings = load_settings(OperatorSettings, database_url="x://", operator_namespaces="a, b")

    configured = kopf_settings(settings)

    assert settings.operator_namespaces == ["a", "b"]
    assert configured.persistence.finalizer == "parley.dev/finalizer"
    assert configured.peering.standalone is True
    assert configured.peering.clusterwide is False
    assert configured.watching.server_timeout == 60
    assert configured.watching.client_timeout == 90
    assert configured.watching.connect_timeout == 10
    assert list(configured.watching.label_selectors.values()) == ["parley.dev/apiuser-password=true"]


def test_bad_configuration_exits_2_naming_the_variable() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x", "OPERATOR_METRICS_PORT": "no"}
    argv = [sys.executable, "-m", "parley_operator"]

    result = subprocess.run(argv, env=env, capture_output=True, check=False, text=True, timeout=60)

    assert result.returncode == 2
    assert "OPERATOR_METRICS_PORT" in result.stderr
