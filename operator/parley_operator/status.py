"""The ApiUser's status: the Ready condition, its reasons, and the patch that moves status forward."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"


class Reason(enum.StrEnum):
    """Reasons of the Ready condition; docs/operator.md says what each means and what to do."""

    SYNCED = "Synced"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a reason, not a secret
    SECRET_NOT_LABELLED = "SecretNotLabelled"  # noqa: S105
    SECRET_NOT_ALLOWED = "SecretNotAllowed"  # noqa: S105
    KEY_NOT_FOUND = "KeyNotFound"
    PASSWORD_REJECTED = "PasswordRejected"  # noqa: S105
    CONFLICT = "Conflict"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    VAULT_UNAVAILABLE = "VaultUnavailable"
    VAULT_ACCESS_DENIED = "VaultAccessDenied"
    API_UNAVAILABLE = "KubernetesApiUnavailable"
    INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True)
class Outcome:
    """What one sync found and did. ``temporary`` failures are retried with backoff."""

    ready: bool
    reason: Reason
    message: str
    temporary: bool = False
    wrote: bool = False
    hashed: bool = False
    fingerprint: str | None = None
    secret_resource_version: str | None = None
    vault_version: int | None = None

    @property
    def result(self) -> str:
        """The metric label: changed / unchanged for success, else the reason."""
        if self.ready:
            return "changed" if self.wrote else "unchanged"
        return str(self.reason)


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 in UTC with a Z, to the second, as Kubernetes writes times."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Ready condition in ``status``, if any."""
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == READY:
            return condition
    return None


def is_transition(status: Mapping[str, Any], outcome: Outcome) -> bool:
    """Whether ``outcome`` changes the Ready condition's status or reason (worth an Event)."""
    previous = ready_condition(status)
    if previous is None:
        return True
    return previous.get("status") != _status_word(outcome) or previous.get("reason") != str(outcome.reason)


def _status_word(outcome: Outcome) -> str:
    return "True" if outcome.ready else "False"


def status_patch(
    status: Mapping[str, Any], outcome: Outcome, *, generation: int, now: datetime | None = None
) -> dict[str, Any]:
    """The status fields to change after ``outcome``; empty when the status already says it all.

    An unchanged resync therefore writes nothing to the API server.
    """
    previous = ready_condition(status)
    word = _status_word(outcome)
    moment = timestamp(now)
    same_state = previous is not None and previous.get("status") == word
    condition = {
        "type": READY,
        "status": word,
        "reason": str(outcome.reason),
        "message": outcome.message,
        "observedGeneration": generation,
        "lastTransitionTime": (previous or {}).get("lastTransitionTime") if same_state else moment,
    }
    desired: dict[str, Any] = {"observedGeneration": generation}
    if previous is None or any(previous.get(k) != v for k, v in condition.items()):
        desired["conditions"] = [condition]
    if outcome.fingerprint is not None:
        desired["fingerprint"] = outcome.fingerprint
        desired["secretResourceVersion"] = outcome.secret_resource_version
        desired["vaultVersion"] = outcome.vault_version
    if outcome.wrote:
        desired["lastSyncTime"] = moment
    return {key: value for key, value in desired.items() if status.get(key) != value}
