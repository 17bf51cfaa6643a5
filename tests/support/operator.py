"""Builders of the operator's tests: ApiUser and Secret manifests, one test's namespace on the
control plane, a running `python -m parley_operator`, and waiting for its api_users rows.

tests/vault and tests/chart drive the operator with these same pieces.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.repositories import api_users
from parley_core.repositories.api_users import OwnedApiUserRecord
from parley_testing.kube import KubeControlPlane
from parley_testing.waiting import eventually, wait_for
from tools.localpg import free_port

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts" / "parley" / "crds" / "apiuser.yaml"
GROUP, VERSION, PLURAL = "parley.dev", "v1alpha1", "apiusers"
DEADLINE = 60.0  # generous: a polling deadline, never a timed assertion
# The label an operator in label mode (the default) requires on password Secrets.
PASSWORD_LABEL = {"parley.dev/apiuser-password": "true"}


@dataclass
class Cluster:
    """The control plane seen from one test's namespace: apply, read, delete ApiUsers and Secrets."""

    plane: KubeControlPlane
    namespace: str

    def apply(self, *documents: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl apply the documents in this namespace."""
        text = yaml.safe_dump_all(list(documents))
        return self.plane.kubectl("apply", "-n", self.namespace, "-f", "-", input=text, check=check)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl in this namespace."""
        return self.plane.kubectl("-n", self.namespace, *args, check=check)

    def kubectl_input(self, args: list[str], text: str) -> str:
        """kubectl in this namespace with ``text`` on stdin; returns stdout."""
        return self.plane.kubectl("-n", self.namespace, *args, input=text).stdout

    def apiuser(self, name: str) -> dict[str, Any] | None:
        """The ApiUser as stored, or None."""
        result = self.kubectl("get", "apiuser", name, "-o", "yaml", check=False)
        if result.returncode != 0:
            return None
        loaded: dict[str, Any] = yaml.safe_load(result.stdout)
        return loaded

    def ready(self, name: str) -> dict[str, Any] | None:
        """The Ready condition of the ApiUser, if it has one."""
        body = self.apiuser(name) or {}
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                return dict(condition)
        return None

    def wait_ready(self, name: str, status: str = "True", reason: str | None = None) -> dict[str, Any]:
        """Wait until Ready has ``status`` (and ``reason``), for the current generation."""

        def check() -> dict[str, Any] | None:
            body = self.apiuser(name) or {}
            condition = self.ready(name)
            if condition is None or condition.get("status") != status:
                return None
            if reason is not None and condition.get("reason") != reason:
                return None
            if (body.get("status") or {}).get("observedGeneration") != body["metadata"]["generation"]:
                return None
            return condition

        return wait_for(check, f"ApiUser {name} Ready={status} {reason or ''}", timeout=DEADLINE)

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events about the ApiUser ``name``."""
        result = self.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "yaml"
        )
        return list((yaml.safe_load(result.stdout) or {}).get("items") or [])


def secret(name: str, password: str, key: str = "password", *, labelled: bool = True) -> dict[str, Any]:
    """A Secret manifest holding ``password`` under ``key``, with the label the operator requires."""
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {key: base64.b64encode(password.encode()).decode()},
    }
    if labelled:
        manifest["metadata"]["labels"] = dict(PASSWORD_LABEL)
    return manifest


def apiuser(
    name: str,
    username: str,
    *,
    secret_name: str | None = None,
    key: str = "password",
    vault: dict[str, str] | None = None,
    disabled: bool | None = None,
    role: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An ApiUser manifest reading its password from a Secret (default) or Vault."""
    spec: dict[str, Any] = {"username": username}
    if vault is not None:
        spec["vault"] = vault
    else:
        spec["passwordSecretRef"] = {"name": secret_name or f"{name}-password", "key": key}
    if disabled is not None:
        spec["disabled"] = disabled
    if role is not None:
        spec["role"] = role
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ApiUser", "metadata": metadata, "spec": spec}


@dataclass
class OperatorProcess:
    """A running `python -m parley_operator` and what tests read from it."""

    env: dict[str, str]
    log_path: Path
    metrics_port: int
    health_port: int
    process: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        """Start the operator and wait for its liveness endpoint and metrics."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "parley_operator"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            self._live, "the operator's liveness endpoint", timeout=DEADLINE, retry_on=(httpx.TransportError,)
        )

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the operator exited {self.process.returncode}:\n{self.log()[-4000:]}")
        health = httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1)
        metrics = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1)
        return health.status_code == 200 and metrics.status_code == 200

    def stop(self) -> int | None:
        """SIGTERM and wait (coverage is written at a clean exit); SIGKILL only as a last resort."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(timeout=10)
        self.exit_codes.append(code)
        return code

    def log(self) -> str:
        """Everything the operator wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        """The /metrics text."""
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            if all(f'{key}="{wanted}"' in label_text for key, wanted in labels.items()):
                total += float(value)
        return total

    def hashes(self) -> float:
        """bcrypt hashes computed so far."""
        return self.metric("parley_operator_password_hashes_total")


def operator_env(plane: KubeControlPlane, database_url: str, namespace: str, **extra: str) -> dict[str, str]:
    """Environment of an operator watching ``namespace`` with test-speed bcrypt."""
    env = plane.env()
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_SECRET_PATH", "KUBERNETES_SERVICE_HOST"):
        env.pop(name, None)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
            "DB_CONNECT_TIMEOUT": "2",
            "BCRYPT_ROUNDS": "4",
            "OPERATOR_NAMESPACES": namespace,
            "OPERATOR_HEALTH_PORT": str(free_port()),
            "OPERATOR_METRICS_PORT": str(free_port()),
            "OPERATOR_RETRY_BASE_SECONDS": "0.5",
            "OPERATOR_RETRY_MAX_SECONDS": "2",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return env


async def row_of(engine: AsyncEngine, username: str) -> OwnedApiUserRecord | None:
    """The api_users row of ``username`` with its owner columns."""
    async with engine.connect() as conn:
        return await api_users.get_with_owner(conn, username)


async def wait_row(
    engine: AsyncEngine, username: str, check: Callable[[OwnedApiUserRecord], bool] = lambda _: True
) -> OwnedApiUserRecord:
    """Wait until the row exists and satisfies ``check``."""

    async def found() -> OwnedApiUserRecord | None:
        row = await row_of(engine, username)
        return row if row is not None and check(row) else None

    return await eventually(found, f"the row of {username}", timeout=DEADLINE)
