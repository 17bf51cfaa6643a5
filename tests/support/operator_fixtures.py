"""Fixtures of the tests that run the operator (tests/operator, tests/vault): the ApiUser CRD on the
envtest control plane, one test's namespace, and `python -m parley_operator` processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from parley_testing.kube import KubeControlPlane
from parley_testing.waiting import wait_for
from tests.support.operator import CRD, DEADLINE, Cluster, OperatorProcess, operator_env


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
        timeout=DEADLINE,
    )
    return CRD


@pytest.fixture
def cluster(kube_control_plane: KubeControlPlane, kube_namespace: str, apiuser_crd: Path) -> Cluster:
    """This test's namespace on the control plane, with the CRD installed."""
    return Cluster(kube_control_plane, kube_namespace)


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
