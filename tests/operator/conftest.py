"""Operator fixtures: the ApiUser CRD on the envtest control plane, and `python -m parley_operator`."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from parley_testing.kube import KubeControlPlane
from tools.localpg import free_port

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts" / "parley" / "crds" / "apiuser.yaml"
GROUP, VERSION, PLURAL = "parley.dev", "v1alpha1", "apiusers"
DEADLINE = 60.0  # generous: a polling deadline, never a timed assertion
# The label an operator in label mode (the default) requires on password Secrets.
PASSWORD_LABEL = {"parley.dev/apiuser-password": "true"}

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, *, timeout: float = DEADLINE) -> T:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def apiuser_crd(kube_control_plane: KubeControlPlane) -> Path:
    """The chart's ApiUser CRD, applied once per session and established."""
    kube_control_plane.kubectl("apply", "-f", str(CRD))
    kube_control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/apiusers.parley.dev"
    )
    # The discovery cache of the API server needs a moment to serve the new resource.
    wait_for(
        lambda: kube_control_plane.kubectl("get", "apiusers", "-A", check=False).returncode == 0,
        "the apiusers resource to be served",
    )
    return CRD


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

        return wait_for(check, f"ApiUser {name} Ready={status} {reason or ''}")

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
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ApiUser", "metadata": metadata, "spec": spec}


@pytest.fixture
def cluster(kube_control_plane: KubeControlPlane, kube_namespace: str, apiuser_crd: Path) -> Cluster:
    """This test's namespace on the control plane, with the CRD installed."""
    return Cluster(kube_control_plane, kube_namespace)


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
        wait_for(self._live, "the operator's liveness endpoint")

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited {self.process.returncode}:\n{self.log()[-4000:]}")
        try:
            health = httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1)
            metrics = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1)
        except httpx.TransportError:
            return False
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


@pytest.fixture
def start_operator(
    kube_control_plane: KubeControlPlane, kube_namespace: str, apiuser_crd: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators for this test's namespace (``database_url`` and extra env given per call)."""
    started: list[OperatorProcess] = []
    workdir = Path(tempfile.mkdtemp(prefix="parley-operator-"))

    def start(database_url: str, **extra: str) -> OperatorProcess:
        env = operator_env(kube_control_plane, database_url, kube_namespace, **extra)
        process = OperatorProcess(
            env=env,
            log_path=workdir / f"operator-{len(started)}.log",
            metrics_port=int(env["OPERATOR_METRICS_PORT"]),
            health_port=int(env["OPERATOR_HEALTH_PORT"]),
        )
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def operator(start_operator: Callable[..., OperatorProcess], database_url: str) -> OperatorProcess:
    """One operator on this test's database, resyncing every 5 s so drift tests stay short."""
    return start_operator(database_url, OPERATOR_RESYNC_SECONDS="5")
