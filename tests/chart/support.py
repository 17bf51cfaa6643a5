"""Rendering helpers of the chart tests: `helm template` with values files, parsed with PyYAML
(refusing duplicate keys, which Kubernetes would resolve silently, last one wins), and lookups in
what it rendered."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from parley_testing.kube import KubeControlPlane
from parley_testing.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "parley"
VALUES_DIR = REPO / "tests" / "chart" / "values"
CRDS_DIR = REPO / "tests" / "chart" / "crds"
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


class UniqueKeyLoader(yaml.SafeLoader):
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
    wait_for(
        lambda: plane.kubectl("get", resource, "-A", check=False).returncode == 0, f"{resource} to be served"
    )
