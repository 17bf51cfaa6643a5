"""Builders of the operator's unit tests: an ApiUser body as kopf hands it over, its Target, and a
Reconciler reading Secrets from a dict."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.vault import VaultSettings
from parley_operator.model import Target, target_from
from parley_operator.reconcile import Hasher, Reconciler
from parley_operator.sources import PasswordSources, SecretSnapshot, VaultPasswords

PASSWORD = "a-long-enough-password"
UID = "11111111-1111-1111-1111-111111111111"


def body(**spec: Any) -> dict[str, Any]:
    """An ApiUser body as kopf hands it over."""
    return {
        "apiVersion": "parley.dev/v1alpha1",
        "kind": "ApiUser",
        "metadata": {"namespace": "ns", "name": "alice", "uid": UID, "generation": 3},
        "spec": {"username": "alice", "passwordSecretRef": {"name": "alice-pw", "key": "password"}, **spec},
    }


def target(**changes: Any) -> Target:
    """A valid Target reading Secret ns/alice-pw."""
    return replace(target_from(body()), **changes)


class FakeSecrets:
    """Secrets kept in a dict; a missing one reads as None."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], SecretSnapshot] = {}
        self.version = 0

    def put(self, name: str, password: str, key: str = "password") -> None:
        self.version += 1
        self.items["ns", name] = SecretSnapshot(
            "ns", name, f"uid-{name}", str(self.version), {key: base64.b64encode(password.encode()).decode()}
        )

    async def get(self, namespace: str, name: str) -> SecretSnapshot | None:
        return self.items.get((namespace, name))


def reconciler(engine: AsyncEngine, secrets: FakeSecrets, rounds: int = 4) -> Reconciler:
    """A Reconciler on ``engine`` with fake Secrets and no Vault."""
    return Reconciler(
        engine=engine,
        sources=PasswordSources(secrets=secrets, vault=VaultPasswords(VaultSettings(addr=None))),
        hasher=Hasher(rounds=rounds, concurrency=2),
        min_password_length=12,
    )
