"""Rendering helpers for the chart tests: `helm template` with values files, parsed with PyYAML
(refusing duplicate keys, which Kubernetes would resolve silently, last one wins)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from parley_testing.kube import KubeControlPlane

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "parley"
VALUES_DIR = Path(__file__).resolve().parent / "values"
CRDS_DIR = Path(__file__).resolve().parent / "crds"
RELEASE = "parley"
NAMESPACE = "parley"
MONITORING = "monitoring.coreos.com/v1"
CHART_CRDS = (
    "apiusers.parley.dev",
    "servicemonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
)


@dataclass(frozen=True)
class Rendered:
    """The objects one `helm template` produced, with lookups by kind and name."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind``."""
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of ``kind`` named ``name``; fails listing what exists."""
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        names = [o["metadata"]["name"] for o in self.of_kind(kind)]
        assert len(found) == 1, f"{kind}/{name} not rendered exactly once (have {names})"
        return found[0]

    def names(self, kind: str) -> set[str]:
        """Names of every object of ``kind``."""
        return {o["metadata"]["name"] for o in self.of_kind(kind)}


def helm(helm_bin: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run helm and capture its output."""
    return subprocess.run(
        [str(helm_bin), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def template_args(
    values: Sequence[str] = (),
    sets: Sequence[str] = (),
    api_versions: Sequence[str] = (),
    namespace: str = NAMESPACE,
) -> list[str]:
    """Arguments of `helm template RELEASE CHART` for values files (names under values/ or paths)."""
    args = ["template", RELEASE, str(CHART), "--namespace", namespace]
    for name in values:
        path = Path(name) if "/" in name else VALUES_DIR / f"{name}.yaml"
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    for api in api_versions:
        args += ["--api-versions", api]
    return args


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that fails on a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {duplicates}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


RenderFn = Callable[..., Rendered]
FailFn = Callable[..., str]


@pytest.fixture(scope="session")
def render(helm_bin: Path) -> RenderFn:
    """`render(values=[...], sets=[...], api_versions=[...])` -> Rendered; fails on a helm error."""

    def _render(
        values: Sequence[str] = ("dev",),
        sets: Sequence[str] = (),
        api_versions: Sequence[str] = (),
        namespace: str = NAMESPACE,
        upgrade: bool = False,
    ) -> Rendered:
        args = template_args(values, sets, api_versions, namespace) + (["--is-upgrade"] if upgrade else [])
        result = helm(helm_bin, *args)
        assert result.returncode == 0, result.stderr
        objects = [doc for doc in yaml.load_all(result.stdout, Loader=_UniqueKeyLoader) if doc]
        return Rendered(objects)

    return _render


@pytest.fixture(scope="session")
def render_error(helm_bin: Path) -> FailFn:
    """`render_error(values=[...], sets=[...])` -> helm's stderr; fails if rendering succeeded."""

    def _render_error(values: Sequence[str] = ("dev",), sets: Sequence[str] = ()) -> str:
        result = helm(helm_bin, *template_args(values, sets))
        assert result.returncode != 0, f"rendering unexpectedly succeeded:\n{result.stdout[:2000]}"
        return result.stderr

    return _render_error


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet, Job or Pod."""
    if workload["kind"] == "Pod":
        spec: dict[str, Any] = workload["spec"]
        return spec
    template: dict[str, Any] = workload["spec"]["template"]["spec"]
    return template


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env as name -> value (a string) or valueFrom (a dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def wait_for_served(plane: KubeControlPlane, resource: str) -> None:
    """Wait until the API server serves ``resource`` (CRD discovery lags behind Established)."""
    for _ in range(100):
        if plane.kubectl("get", resource, "-A", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{resource} is not served")


@pytest.fixture(scope="session")
def chart_crds(kube_control_plane: KubeControlPlane) -> None:
    """The ApiUser CRD and the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule), established."""
    files = [CHART / "crds" / "apiuser.yaml", *sorted(CRDS_DIR.glob("*.yaml"))]
    for path in files:
        kube_control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for name in CHART_CRDS:
        kube_control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    for resource in CHART_CRDS:
        wait_for_served(kube_control_plane, resource)
