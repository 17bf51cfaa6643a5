"""docs/guides/secrets-management.md shows exactly the Vault setup the tests use, and it fits the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.vault_server import (
    AUDIENCE,
    K8S_MOUNT,
    KV_MOUNT,
    POLICIES,
    REVIEWER_BINDING,
    REVIEWER_NAMESPACE,
    REVIEWER_SERVICE_ACCOUNT,
    ROLES,
    policy_command,
    role_command,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "secrets-management.md"
VALUES = ROOT / "charts" / "parley" / "values.yaml"


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_guide_shows_the_policy(name: str) -> None:
    assert policy_command(name) in GUIDE.read_text()


@pytest.mark.parametrize("name", sorted(ROLES))
def test_guide_shows_the_role(name: str) -> None:
    assert role_command(name) in GUIDE.read_text()


def test_guide_shows_the_token_reviewer() -> None:
    text = GUIDE.read_text()
    for expected in (
        f"  name: {REVIEWER_SERVICE_ACCOUNT}\n  namespace: {REVIEWER_NAMESPACE}\n",
        f"  name: {REVIEWER_BINDING}\n",
        "  name: system:auth-delegator\n",
        f"vault auth enable {K8S_MOUNT}\n",
        "    disable_local_ca_jwt=true\n",
    ):
        assert expected in text


def _policy_paths(policy: str) -> list[str]:
    return [line.split('"')[1] for line in POLICIES[policy].splitlines() if line.startswith("path ")]


def _covers(pattern: str, path: str) -> bool:
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


def test_chart_defaults_match_the_roles_and_policies() -> None:
    if not VALUES.exists():
        pytest.skip("charts/parley/values.yaml does not exist yet")
    vault: dict[str, Any] = yaml.safe_load(VALUES.read_text())["vault"]
    guide = GUIDE.read_text()

    assert (vault["authMount"], vault["kvMount"], vault["tokenAudience"]) == (K8S_MOUNT, KV_MOUNT, AUDIENCE)
    for component in ("api", "bot", "operator", "migrations"):
        role, secret_path = vault[component]["role"], vault[component]["secretPath"]
        assert role in ROLES, f"vault.{component}.role {role!r} is not a role the tests create"
        (policy,) = ROLES[role]["token_policies"]
        assert any(_covers(p, f"{KV_MOUNT}/data/{secret_path}") for p in _policy_paths(policy)), (
            f"policy {policy} does not allow reading vault.{component}.secretPath {secret_path}"
        )
        assert f"    role: {role}\n    secretPath: {secret_path}\n" in guide
