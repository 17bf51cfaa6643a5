"""parley_operator.status: the Ready condition patched only on a change, and outcome labels."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from parley_operator.status import Outcome, Reason, is_transition, status_patch


def test_status_patch_writes_a_condition_once_and_then_nothing() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outcome = Outcome(True, Reason.SYNCED, "row created", wrote=True, fingerprint="secret:u@1#k",
                      secret_resource_version="1")  # fmt: skip

    first = status_patch({}, outcome, generation=3, now=now)
    unchanged = status_patch(first, replace(outcome, wrote=False), generation=3, now=now)

    assert first["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Synced",
            "message": "row created",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-02T03:04:05Z",
        }
    ]
    assert first["lastSyncTime"] == "2026-01-02T03:04:05Z"
    assert (first["fingerprint"], first["secretResourceVersion"], first.get("vaultVersion")) == (
        "secret:u@1#k",
        "1",
        None,
    )
    assert unchanged == {}


def test_status_patch_keeps_the_transition_time_while_the_status_stays() -> None:
    before = {"conditions": [{"type": "Ready", "status": "False", "reason": "SecretNotFound",
                              "lastTransitionTime": "2020-01-01T00:00:00Z"}]}  # fmt: skip

    patch = status_patch(before, Outcome(False, Reason.KEY_NOT_FOUND, "no key"), generation=1)

    assert patch["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert patch["conditions"][0]["reason"] == "KeyNotFound"
    assert is_transition(before, Outcome(False, Reason.KEY_NOT_FOUND, "no key"))
    assert not is_transition(before, Outcome(False, Reason.SECRET_NOT_FOUND, "still missing"))
    assert is_transition({}, Outcome(True, Reason.SYNCED, "ok"))


def test_outcome_result_labels() -> None:
    assert Outcome(True, Reason.SYNCED, "", wrote=True).result == "changed"
    assert Outcome(True, Reason.SYNCED, "").result == "unchanged"
    assert Outcome(False, Reason.CONFLICT, "").result == "Conflict"
