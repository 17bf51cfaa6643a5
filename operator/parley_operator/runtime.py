"""What the handlers share, built once at start-up and kept in kopf's ``memo``."""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import kopf

from parley_core.db import create_engine
from parley_core.settings import OperatorSettings
from parley_core.vault import VaultSettings
from parley_operator import metrics
from parley_operator.model import Target
from parley_operator.reconcile import Hasher, OwnerAlive, Reconciler
from parley_operator.sources import (
    LabelledSecrets,
    NamedSecrets,
    PasswordSources,
    SecretGetter,
    VaultPasswords,
)
from parley_operator.status import Outcome


def kube_api_client() -> Any:
    """A kubernetes ApiClient: in-cluster service account, else KUBECONFIG (local runs, tests)."""
    from kubernetes import client, config  # noqa: PLC0415 - heavy import, needed only here

    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


@dataclass
class Runtime:
    """Clients and per-object state: one lock per ApiUser so its syncs never overlap."""

    settings: OperatorSettings
    reconciler: Reconciler
    custom_api: Any
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    ready: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: OperatorSettings) -> Runtime:
        """Engine, kubernetes and Vault clients from settings (no I/O yet)."""
        from kubernetes import client  # noqa: PLC0415

        api = kube_api_client()
        core = client.CoreV1Api(api)
        timeout = settings.operator_kube_timeout_seconds
        secrets: SecretGetter
        if settings.operator_secret_names:
            secrets = NamedSecrets(core, settings.operator_secret_names, timeout=timeout)
        else:
            secrets = LabelledSecrets(core, settings.operator_secret_label_selector, timeout=timeout)
        sources = PasswordSources(secrets=secrets, vault=VaultPasswords(VaultSettings()))
        hasher = Hasher(
            rounds=settings.bcrypt_rounds,
            concurrency=settings.operator_hash_concurrency,
            on_hash=metrics.PASSWORD_HASHES.inc,
        )
        engine = create_engine(settings, application_name="parley-operator")
        reconciler = Reconciler(
            engine=engine,
            sources=sources,
            hasher=hasher,
            min_password_length=settings.operator_min_password_length,
        )
        return cls(settings=settings, reconciler=reconciler, custom_api=client.CustomObjectsApi(api))

    async def sync(self, target: Target, *, trigger: str, owner_alive: OwnerAlive) -> Outcome:
        """One sync of ``target`` under its lock, measured."""
        async with self.locks[target.uid]:
            started = time.perf_counter()  # the sync itself, not the wait for an overlapping one
            outcome = await self.reconciler.sync(target, owner_alive=owner_alive)
            elapsed = time.perf_counter() - started
        metrics.RECONCILE_SECONDS.labels(trigger=trigger).observe(elapsed)
        metrics.RECONCILES.labels(trigger=trigger, result=outcome.result).inc()
        self.ready[target.uid] = outcome.ready
        metrics.set_managed(self.ready)
        return outcome

    async def release(self, *, uid: str, username: str) -> bool:
        """Remove the row of a deleted ApiUser if it owns it, then forget the object."""
        async with self.locks[uid]:
            removed = await self.reconciler.release(username=username, owner_uid=uid)
        self.forget(uid)
        return removed

    def forget(self, uid: str) -> None:
        """Drop the per-object state of an ApiUser that is gone."""
        self.locks.pop(uid, None)
        self.ready.pop(uid, None)
        metrics.set_managed(self.ready)

    def backoff(self, retry: int) -> float:
        """Delay before retry number ``retry`` (0-based): doubling from the base, capped."""
        base = self.settings.operator_retry_base_seconds
        return float(min(base * 2 ** min(retry, 30), self.settings.operator_retry_max_seconds))

    async def close(self) -> None:
        """Close the database pool."""
        await self.reconciler.engine.dispose()


def runtime(memo: kopf.Memo) -> Runtime:
    """The Runtime the start-up handler put into ``memo``."""
    value = memo.get("runtime")
    if not isinstance(value, Runtime):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return value
