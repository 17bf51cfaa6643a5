"""Helpers of the chart tests: `helm template` with values files, parsed with PyYAML (refusing
duplicate keys, which Kubernetes would resolve silently, last one wins), lookups in what it rendered,
the Dockerfile's stages and the values the skaffold dev loop sets."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

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


# ---- the Dockerfile and the skaffold dev loop ----------------------------------------------------


@dataclass
class Stage:
    """One build stage: its name, base and instructions (instruction, value)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        """The values of every ``instruction`` (e.g. RUN) in this stage."""
        return [value for name, value in self.instructions if name == instruction]


def parse_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name (ARGs before the first FROM are substituted)."""
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if current is None and instruction == "ARG":
            name, _, default = value.partition("=")
            args[name] = default
            continue
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", value.strip(), re.IGNORECASE)
            assert match, f"FROM {value}"
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            current = Stage(name=match.group(2) or base, base=base)
            stages[current.name] = current
            continue
        assert current is not None, f"{instruction} before the first FROM"
        current.instructions.append((instruction, value))
    return stages


def load(path: Path) -> dict[str, Any]:
    """One YAML document."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def skaffold_sets() -> list[str]:
    """skaffold's setValueTemplates with the image templates filled as skaffold would."""
    release = load(REPO / "skaffold.yaml")["deploy"]["helm"]["releases"][0]
    sets = []
    for key, value in release["setValueTemplates"].items():
        filled = re.sub(r"\{\{\.IMAGE_REPO_(\w+)\}\}", lambda m: m.group(1).replace("_", "-"), str(value))
        filled = re.sub(r"\{\{\.IMAGE_TAG_\w+\}\}", "dev-0123abcd", filled)
        sets.append(f"{key}={filled}")
    return sets
