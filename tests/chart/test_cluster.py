"""The chart against the real kube-apiserver (envtest): server-side validation, Pod Security, helm install,
the operator's RBAC through its ServiceAccount token, and the operator reconciling with that token.

No kubelet or controllers run: pods never start, so these tests check what the API server decides.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.chart.conftest import CHART, CRDS_DIR, MONITORING, REPO, VALUES_DIR, helm, pod_spec, template_args
from tests.support.kube import KubeControlPlane

pytestmark = pytest.mark.kube

EXAMPLE = REPO / "manifests" / "examples" / "dashboard-user.yaml"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def wait_for_served(plane: KubeControlPlane, resource: str) -> None:
    """Wait until the API server serves ``resource`` (CRD discovery lags behind Established)."""
    for _ in range(100):
        if plane.kubectl("get", resource, "-A", check=False).returncode == 0:
            return
        subprocess.run(["sleep", "0.2"], check=False)
    raise AssertionError(f"{resource} is not served")


@pytest.fixture(scope="session")
def chart_crds(kube_control_plane: KubeControlPlane) -> None:
    """The ApiUser CRD and the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule), established."""
    files = [CHART / "crds" / "apiuser.yaml", *sorted(CRDS_DIR.glob("*.yaml"))]
    for path in files:
        kube_control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for name in (
        "apiusers.parley.dev",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        kube_control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    for resource in (
        "apiusers.parley.dev",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        wait_for_served(kube_control_plane, resource)


def create_namespace(plane: KubeControlPlane, labels: dict[str, str] | None = None) -> str:
    """A fresh namespace (Pod Security labels optional)."""
    name = f"c-{uuid.uuid4().hex[:10]}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    return name


def rendered_text(helm_bin: Path, values: list[str], namespace: str, sets: list[str] | None = None) -> str:
    """`helm template` output (hooks and the test Pod included), with monitoring.coreos.com/v1."""
    result = helm(helm_bin, *template_args(values, sets or [], [MONITORING], namespace))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "values",
    [["dev"], ["webhook"], ["dev", "external-db"], [str(CHART / "values-production.yaml")]],
    ids=["dev", "webhook", "external-db", "production"],
)
def test_every_rendered_object_is_valid_on_the_api_server(
    kube_control_plane: KubeControlPlane, chart_crds: None, helm_bin: Path, values: list[str]
) -> None:
    """kubectl apply --dry-run=server --validate=strict accepts every object; no Pod Security warning."""
    namespace = create_namespace(kube_control_plane, RESTRICTED)
    other = create_namespace(kube_control_plane)
    sets = [f"operator.watchNamespaces={{{namespace},{other}}}"] if "external-db" in values else []
    manifest = rendered_text(helm_bin, values, namespace, sets)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifest) if doc}
    assert {"Deployment", "ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Job"} <= kinds
    result = kube_control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert "would violate PodSecurity" not in result.stderr


def test_a_misspelled_field_is_refused_by_the_server(
    kube_control_plane: KubeControlPlane, chart_crds: None, helm_bin: Path
) -> None:
    """The dry run is not vacuous: a misspelled field in a ServiceMonitor or a Deployment is refused."""
    namespace = create_namespace(kube_control_plane)
    docs = [d for d in yaml.safe_load_all(rendered_text(helm_bin, ["dev"], namespace)) if d]
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    for doc in (monitor, deployment):
        result = kube_control_plane.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
            input=yaml.safe_dump(doc), check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert "unknown field" in result.stderr


def test_every_pod_is_admitted_under_restricted_pod_security(
    kube_control_plane: KubeControlPlane, helm_bin: Path
) -> None:
    """Each workload's pod, created for real (dry run) in an enforce=restricted namespace, is admitted."""
    namespace = create_namespace(kube_control_plane, RESTRICTED)
    docs = [d for d in yaml.safe_load_all(rendered_text(helm_bin, ["dev", "external-db"], namespace)) if d]
    docs += [d for d in yaml.safe_load_all(rendered_text(helm_bin, ["dev"], namespace)) if d]
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job", "Pod"}]
    assert len(workloads) >= 8
    for workload in workloads:
        spec = dict(pod_spec(workload))
        # A StatefulSet's controller adds a volume per claim template; do the same here.
        claims = workload["spec"].get("volumeClaimTemplates") or []
        spec["volumes"] = [*(spec.get("volumes") or [])] + [
            {
                "name": c["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": c["metadata"]["name"] + "-0"},
            }
            for c in claims
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"psa-{uuid.uuid4().hex[:8]}", "namespace": namespace},
            "spec": spec,
        }
        result = kube_control_plane.kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
        )
        assert result.returncode == 0, f"{workload['metadata']['name']}: {result.stderr}"
    # Enforcement is real: the same pod without its security context is refused.
    loose = pod_spec(workloads[0]) | {"securityContext": {}}
    loose["containers"] = [
        {k: v for k, v in c.items() if k != "securityContext"} for c in loose["containers"]
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "psa-loose", "namespace": namespace},
        "spec": loose,
    }
    result = kube_control_plane.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr


@dataclass
class Release:
    """A release installed by `helm install` into the envtest API server."""

    plane: KubeControlPlane
    helm_bin: Path
    namespace: str
    other_namespace: str

    def helm(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """helm against the control plane."""
        return subprocess.run(
            [str(self.helm_bin), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env=self.plane.env(),
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """An object of the release's namespace, as stored."""
        result = self.plane.kubectl("get", kind, name, "-n", self.namespace, "-o", "json")
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded


@pytest.fixture(scope="module")
def release(kube_control_plane: KubeControlPlane, chart_crds: None, helm_bin: Path) -> Iterator[Release]:
    """`helm install parley` with the dev values (no hooks: no kubelet runs the migration Job)."""
    namespace = create_namespace(kube_control_plane, RESTRICTED)
    other = create_namespace(kube_control_plane)
    installed = Release(kube_control_plane, helm_bin, namespace, other)
    result = installed.helm(
        "install",
        "parley",
        CHART,
        "--namespace",
        namespace,
        "--values",
        VALUES_DIR / "dev.yaml",
        "--no-hooks",
    )
    assert result.returncode == 0, result.stderr
    yield installed
    installed.helm("uninstall", "parley", "--namespace", namespace, "--no-hooks")


def test_helm_install_creates_the_release(release: Release) -> None:
    """The install succeeds and every object exists, ServiceMonitors included (the CRDs are served)."""
    status = json.loads(release.helm("status", "parley", "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert "monitoring.coreos.com/v1 is not served" not in status["info"].get("notes", "")
    expected = {
        "deployment": {"parley-api", "parley-bot", "parley-operator"},
        "statefulset": {"parley-postgresql"},
        "service": {
            "parley-api",
            "parley-bot",
            "parley-operator-metrics",
            "parley-postgresql",
            "parley-postgresql-headless",
        },
        "servicemonitor": {"parley-api", "parley-bot", "parley-operator", "parley-postgresql"},
        "prometheusrule": {"parley"},
        "networkpolicy": {"parley-api", "parley-bot", "parley-operator", "parley-postgresql"},
        "role": {"parley-operator"},
        "rolebinding": {"parley-operator"},
        "serviceaccount": {"parley-api", "parley-bot", "parley-operator"},
        "poddisruptionbudget": {"parley-api"},
        "configmap": {"parley-api", "parley-bot", "parley-operator", "parley-dashboard"},
        "secret": {"parley-secrets", "parley-postgresql"},
    }
    for kind, names in expected.items():
        result = release.plane.kubectl("get", kind, "-n", release.namespace, "-o", "name")
        found = {line.split("/", 1)[1] for line in result.stdout.split()}
        assert names <= found, f"{kind}: missing {names - found}"
    # Hooks were skipped (--no-hooks): nothing of the migration's was created outside a hook.
    jobs = release.plane.kubectl("get", "jobs", "-n", release.namespace, "-o", "name").stdout
    assert jobs.strip() == ""


def test_helm_upgrade_keeps_the_database_password_and_rolls_config(release: Release) -> None:
    """An upgrade re-uses the stored PostgreSQL password (lookup) and changes the config checksum."""
    password = release.get("secret", "parley-postgresql")["data"]["password"]
    before = release.get("deployment", "parley-api")["spec"]["template"]["metadata"]["annotations"]
    result = release.helm(
        "upgrade", "parley", CHART, "-n", release.namespace, "--values", VALUES_DIR / "dev.yaml",
        "--set", "logLevel=DEBUG", "--no-hooks",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert release.get("secret", "parley-postgresql")["data"]["password"] == password
    after = release.get("deployment", "parley-api")["spec"]["template"]["metadata"]["annotations"]
    assert after["checksum/config"] != before["checksum/config"]


def token_kubeconfig(plane: KubeControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig authenticating with a TokenRequest token of ``account`` (as a pod would)."""
    token = plane.kubectl("create", "token", account, "-n", namespace, "--duration=30m").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {"server": plane.server, "certificate-authority": str(plane.ca_path)},
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {"name": account, "context": {"cluster": "envtest", "user": account, "namespace": namespace}}
        ],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def as_account(plane: KubeControlPlane, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with the ServiceAccount's token instead of the admin certificate."""
    return subprocess.run(
        [str(plane.tools["kubectl"]), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**plane.env(), "KUBECONFIG": str(kubeconfig)},
    )


@pytest.fixture(scope="module")
def operator_kubeconfig(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's operator ServiceAccount, as a token kubeconfig."""
    path = tmp_path_factory.mktemp("operator-token") / "kubeconfig"
    return token_kubeconfig(release.plane, release.namespace, "parley-operator", path)


ALLOWED = [
    ("get", "apiusers.parley.dev"),
    ("list", "apiusers.parley.dev"),
    ("watch", "apiusers.parley.dev"),
    ("patch", "apiusers.parley.dev"),
    ("patch", "apiusers.parley.dev", "--subresource=status"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "events"),
]
REFUSED = [
    ("create", "apiusers.parley.dev"),
    ("delete", "apiusers.parley.dev"),
    ("update", "secrets"),
    ("delete", "secrets"),
    ("create", "secrets"),
    ("delete", "deployments.apps"),
    ("create", "pods"),
    ("get", "configmaps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("list", "namespaces"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "apiusers.parley.dev"),
]


def test_operator_token_is_allowed_what_it_needs(release: Release, operator_kubeconfig: Path) -> None:
    """get/list/watch/patch ApiUsers and their status, read Secrets, post Events — in its namespace."""
    for verb, resource, *extra in ALLOWED:
        result = as_account(
            release.plane,
            operator_kubeconfig,
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            release.namespace,
            *extra,
        )
        assert result.stdout.strip() == "yes", f"{verb} {resource} {extra}: {result.stdout}{result.stderr}"
    listed = as_account(
        release.plane, operator_kubeconfig, "get", "apiusers,secrets", "-n", release.namespace
    )
    assert listed.returncode == 0, listed.stderr


def test_operator_token_is_refused_what_the_chart_did_not_grant(
    release: Release, operator_kubeconfig: Path
) -> None:
    """Nothing else: no writes to Secrets, no other namespaces, no cluster-wide reads, no workloads."""
    for verb, resource in REFUSED:
        result = as_account(
            release.plane, operator_kubeconfig, "auth", "can-i", verb, resource, "-n", release.namespace
        )
        assert result.stdout.strip() == "no", f"{verb} {resource}: {result.stdout}"
    for verb, resource in (("list", "secrets"), ("get", "apiusers.parley.dev")):
        result = as_account(
            release.plane, operator_kubeconfig, "auth", "can-i", verb, resource, "-n", release.other_namespace
        )
        assert result.stdout.strip() == "no", f"{verb} {resource} in another namespace"
    for args in (
        ("get", "secrets", "-n", release.other_namespace),
        ("get", "secrets", "-A"),
        ("get", "nodes"),
    ):
        result = as_account(release.plane, operator_kubeconfig, *args)
        assert result.returncode != 0
        assert "Forbidden" in result.stderr, args
    api_account = as_account(
        release.plane,
        token_kubeconfig(release.plane, release.namespace, "parley-api", operator_kubeconfig.parent / "api"),
        "auth", "can-i", "list", "secrets", "-n", release.namespace,
    )  # fmt: skip
    assert api_account.stdout.strip() == "no", "the API's account has no Kubernetes permissions"


def test_operator_reconciles_with_the_charts_token(
    release: Release, operator_kubeconfig: Path, database_url: str, tmp_path: Path
) -> None:
    """`python -m parley_operator` with only the chart's RBAC turns the example ApiUser into a row."""
    from tests.operator.conftest import OperatorProcess, operator_env, wait_for  # noqa: PLC0415

    plane = release.plane
    plane.kubectl("apply", "-n", release.namespace, "-f", str(EXAMPLE))
    env = operator_env(plane, database_url, release.namespace, KUBECONFIG=str(operator_kubeconfig))
    operator = OperatorProcess(
        env=env,
        log_path=tmp_path / "operator.log",
        metrics_port=int(env["OPERATOR_METRICS_PORT"]),
        health_port=int(env["OPERATOR_HEALTH_PORT"]),
    )
    try:
        operator.start()

        def ready() -> dict[str, Any] | None:
            body = json.loads(
                plane.kubectl("get", "apiuser", "analyst", "-n", release.namespace, "-o", "json").stdout
            )
            for condition in (body.get("status") or {}).get("conditions") or []:
                if condition["type"] == "Ready" and condition["status"] == "True":
                    return dict(condition)
            return None

        condition = wait_for(ready, "the example ApiUser to be Ready with the chart's token")
        assert condition["reason"] == "Synced"

        async def row() -> tuple[Any, ...] | None:
            engine = create_async_engine(database_url)
            try:
                async with engine.connect() as conn:
                    result = await conn.execute(
                        text("SELECT username, source, is_active FROM api_users WHERE username = 'analyst'")
                    )
                    found = result.first()
                    return None if found is None else tuple(found)
            finally:
                await engine.dispose()

        assert asyncio.run(row()) == ("analyst", "operator", True)
        events = plane.kubectl(
            "get",
            "events",
            "-n",
            release.namespace,
            "--field-selector",
            "involvedObject.name=analyst",
            "-o",
            "name",
        )
        assert events.stdout.strip(), "the operator could post its Events"
        assert operator.metric("parley_operator_reconciles_total", result="changed") >= 1
        forbidden = [line for line in operator.log().splitlines() if "403" in line or "Forbidden" in line]
        assert forbidden == [], forbidden[:5]
    finally:
        code = operator.stop()
        plane.kubectl("delete", "-n", release.namespace, "-f", str(EXAMPLE), "--wait=false", check=False)
    assert code == 0, operator.log()[-3000:]


def test_examples_are_valid(kube_control_plane: KubeControlPlane, chart_crds: None) -> None:
    """manifests/examples/dashboard-user.yaml passes the CRD's validation."""
    namespace = create_namespace(kube_control_plane)
    documents = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    assert {d["kind"] for d in documents} == {"Secret", "ApiUser"}
    result = kube_control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(EXAMPLE), check=False
    )
    assert result.returncode == 0, result.stderr
