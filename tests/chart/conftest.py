"""Chart test fixtures: `render` and `render_error` (helm template), and the CRDs on the control plane."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from parley_testing.kube import KubeControlPlane
from tests.chart.support import (
    CHART,
    CHART_CRDS,
    CRDS_DIR,
    NAMESPACE,
    FailFn,
    Rendered,
    RenderFn,
    UniqueKeyLoader,
    helm,
    template_args,
    wait_for_served,
)


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
        objects = [doc for doc in yaml.load_all(result.stdout, Loader=UniqueKeyLoader) if doc]
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
