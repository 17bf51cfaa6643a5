"""parley_operator.model: an ApiUser spec read into a Target, and the specs it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from parley_core.models import ApiUserRole
from parley_operator.model import InvalidSpecError, SecretRef, Target, VaultRef, target_from
from tests.operator.support import UID, body


def test_target_from_reads_a_secret_source_and_the_adopt_annotation() -> None:
    raw = body(disabled=True)
    raw["metadata"]["annotations"] = {"parley.dev/adopt": "True"}

    parsed = target_from(raw)

    assert parsed == Target(
        "ns", "alice", UID, 3, "alice", SecretRef("alice-pw", "password"), None, True, True
    )
    assert parsed.reference["metadata"] == {"namespace": "ns", "name": "alice", "uid": UID}


def test_target_from_reads_a_vault_source() -> None:
    raw = body()
    del raw["spec"]["passwordSecretRef"]
    raw["spec"]["vault"] = {"path": "parley/dash/alice", "key": "pw"}

    assert target_from(raw).vault_ref == VaultRef("parley/dash/alice", "pw")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"username": "A"}, "spec.username"),
        ({"vault": {"path": "x", "key": "k"}}, "exactly one password source"),
        ({"passwordSecretRef": None}, "exactly one password source"),
        ({"passwordSecretRef": "alice-pw"}, "must be an object"),
        ({"role": "root"}, "spec.role must be analyst or admin"),
        ({"passwordSecretRef": {"name": "Bad_Name", "key": "k"}}, "not a valid Secret name"),
        ({"passwordSecretRef": {"name": "ok", "key": "bad key"}}, "not a valid Secret key"),
    ],
)
def test_target_from_refuses_invalid_specs(spec: dict[str, Any], message: str) -> None:
    raw = body(**spec)
    if spec.get("passwordSecretRef", "") is None:
        del raw["spec"]["passwordSecretRef"]

    with pytest.raises(InvalidSpecError, match=message):
        target_from(raw)


@pytest.mark.parametrize(("path", "key"), [("../etc", "k"), ("a//b", "k"), ("/abs", "k"), ("ok", "")])
def test_target_from_refuses_bad_vault_refs(path: str, key: str) -> None:
    raw = body()
    del raw["spec"]["passwordSecretRef"]
    raw["spec"]["vault"] = {"path": path, "key": key}

    with pytest.raises(InvalidSpecError, match=r"spec\.vault"):
        target_from(raw)


def test_the_role_defaults_to_analyst_and_admin_is_read() -> None:
    assert target_from(body()).role is ApiUserRole.ANALYST
    assert target_from(body(role="admin")).role is ApiUserRole.ADMIN
