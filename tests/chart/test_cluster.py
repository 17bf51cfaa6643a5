"""The chart against the real kube-apiserver (envtest): server-side validation, Pod Security, helm install,
the operator's RBAC through its ServiceAccount token, and the operator reconciling with that token.

No kubelet or controllers run: pods never start, so these tests check what the API server decides.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley_testing.kube import SA_ISSUER, KubeControlPlane
from tests.chart.support import CHART, MONITORING, REPO, VALUES_DIR, helm, pod_spec, template_args
from tests.support.operator_log import refusals

pytestmark = pytest.mark.kube

EXAMPLE = REPO / "manifests" / "examples" / "dashboard-user.yaml"
PASSWORD = "a-long-enough-password"
NAMED = ["operator.secrets.names={analyst-password}"]  # the chart's named mode
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


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
    # Hooks were skipped (--no-hooks), yet the first install with the bundled database migrates: its
    # Job is an ordinary object of the release (a hook would deadlock `helm install --wait`).
    jobs = release.plane.kubectl("get", "jobs", "-n", release.namespace, "-o", "name").stdout
    assert jobs.split() == ["job.batch/parley-migrations"]
    assert "helm.sh/hook" not in (
        release.get("job", "parley-migrations")["metadata"].get("annotations") or {}
    )


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
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "events"),
]
REFUSED = [
    ("get", "secrets"),  # label mode reads through the labelled list only
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
    """get/list/watch/patch ApiUsers and their status, list/watch Secrets, post Events — in its namespace."""
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
    from parley_testing.waiting import wait_for  # noqa: PLC0415
    from tests.support.operator import DEADLINE, Cluster, OperatorProcess, operator_env  # noqa: PLC0415

    plane = release.plane
    plane.kubectl("apply", "-n", release.namespace, "-f", str(EXAMPLE))
    unlabelled = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "plain-password"},
            "stringData": {"password": "a-long-enough-password"},
        },
        {
            "apiVersion": "parley.dev/v1alpha1",
            "kind": "ApiUser",
            "metadata": {"name": "plain"},
            "spec": {"username": "plain", "passwordSecretRef": {"name": "plain-password", "key": "password"}},
        },
    ]
    plane.kubectl("apply", "-n", release.namespace, "-f", "-", input=yaml.safe_dump_all(unlabelled))
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

        condition = wait_for(
            ready, "the example ApiUser to be Ready with the chart's token", timeout=DEADLINE
        )
        assert condition["reason"] == "Synced"
        refused = Cluster(plane, release.namespace).wait_ready(
            "plain", status="False", reason="SecretNotLabelled"
        )
        assert "label secret plain-password parley.dev/apiuser-password=true" in refused["message"]

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
        assert asyncio.run(count_rows(database_url, "plain")) == 0
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
        forbidden = refusals(operator.log())
        assert forbidden == [], forbidden[:5]
    finally:
        code = operator.stop()
        plane.kubectl("delete", "-n", release.namespace, "-f", str(EXAMPLE), "--wait=false", check=False)
        plane.kubectl("delete", "-n", release.namespace, "apiuser", "plain", "--wait=false", check=False)
    assert code == 0, operator.log()[-3000:]


async def count_rows(database_url: str, username: str) -> int:
    """How many api_users rows ``username`` has (0 or 1)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM api_users WHERE username = :u"), {"u": username}
            )
            return int(found or 0)
    finally:
        await engine.dispose()


def apply_operator_rbac(plane: KubeControlPlane, helm_bin: Path, namespace: str, sets: list[str]) -> None:
    """The chart's operator ServiceAccount, Role and RoleBinding (rendered with ``sets``), applied."""
    wanted = {"ServiceAccount", "Role", "RoleBinding"}
    docs = [
        doc
        for doc in yaml.safe_load_all(rendered_text(helm_bin, ["dev"], namespace, sets))
        if doc and doc["kind"] in wanted and doc["metadata"]["name"] == "parley-operator"
    ]
    assert {doc["kind"] for doc in docs} == wanted
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def secret_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Secret with a password key (and ``labels``)."""
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": {"password": PASSWORD}}


def service_account_token(plane: KubeControlPlane, namespace: str) -> str:
    """A TokenRequest token of the parley-operator ServiceAccount, as its pod would mount."""
    from kubernetes import client  # noqa: PLC0415

    with plane.api_client() as api:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[SA_ISSUER], expiration_seconds=3600)
        )
        issued = client.CoreV1Api(api).create_namespaced_service_account_token(
            "parley-operator", namespace, request
        )
    assert issued.status is not None
    return str(issued.status.token)


def secret_names(listing: Any) -> set[str]:
    """Names of the Secrets in a V1SecretList."""
    return {item.metadata.name for item in listing.items}


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status of a kubernetes client call (200 when it succeeds)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_named_mode_token_reads_the_named_secret_and_nothing_else(
    kube_control_plane: KubeControlPlane, helm_bin: Path
) -> None:
    """operator.secrets.names: the API server itself refuses every other Secret (403), and all lists."""
    from kubernetes import client  # noqa: PLC0415

    plane = kube_control_plane
    namespace = create_namespace(plane)
    apply_operator_rbac(plane, helm_bin, namespace, NAMED)
    secrets = [
        secret_manifest("analyst-password"),
        secret_manifest("parley-postgresql"),  # e.g. the database Secret
        secret_manifest("labelled-password", {"parley.dev/apiuser-password": "true"}),
    ]
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(secrets))

    with plane.api_client(token=service_account_token(plane, namespace)) as api:
        core = client.CoreV1Api(api)
        assert status_of(partial(core.read_namespaced_secret, "analyst-password", namespace)) == 200
        assert "password" in (core.read_namespaced_secret("analyst-password", namespace).data or {})
        for other in ("parley-postgresql", "labelled-password", "does-not-exist"):
            assert status_of(partial(core.read_namespaced_secret, other, namespace)) == 403, other
        assert status_of(partial(core.list_namespaced_secret, namespace)) == 403
        by_name = "metadata.name=analyst-password"
        assert status_of(partial(core.list_namespaced_secret, namespace, field_selector=by_name)) == 403
        assert status_of(partial(core.read_namespaced_secret, "analyst-password", "default")) == 403


def test_label_mode_token_has_no_get_and_rbac_cannot_filter_by_label(
    kube_control_plane: KubeControlPlane, helm_bin: Path
) -> None:
    """The default Role: no get on any Secret; list works — for every Secret, which is why the operator
    itself refuses unlabelled ones (docs/operator.md#which-secrets-the-operator-reads)."""
    from kubernetes import client  # noqa: PLC0415

    plane = kube_control_plane
    namespace = create_namespace(plane)
    apply_operator_rbac(plane, helm_bin, namespace, [])
    label = {"parley.dev/apiuser-password": "true"}
    secrets = [secret_manifest("analyst-password", label), secret_manifest("parley-postgresql")]
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(secrets))

    with plane.api_client(token=service_account_token(plane, namespace)) as api:
        core = client.CoreV1Api(api)
        for name in ("analyst-password", "parley-postgresql"):
            assert status_of(partial(core.read_namespaced_secret, name, namespace)) == 403, name
        labelled = core.list_namespaced_secret(namespace, label_selector="parley.dev/apiuser-password=true")
        everything = core.list_namespaced_secret(namespace)
    assert secret_names(labelled) == {"analyst-password"}
    assert {"analyst-password", "parley-postgresql"} <= secret_names(everything)


@pytest.mark.usefixtures("chart_crds")
async def test_operator_in_named_mode_with_the_charts_token(
    kube_control_plane: KubeControlPlane,
    helm_bin: Path,
    engine: Any,
    database_url: str,
    tmp_path: Path,
) -> None:
    """Named mode end to end: the named Secret syncs and rotations arrive by polling; any other Secret
    is SecretNotAllowed without a request; no 403 ever (the operator never asks for what it may not read)."""
    from parley_core.passwords import verify_password  # noqa: PLC0415
    from tests.support.operator import (  # noqa: PLC0415
        Cluster,
        OperatorProcess,
        apiuser,
        operator_env,
        row_of,
        secret,
        wait_row,
    )

    plane = kube_control_plane
    namespace = create_namespace(plane)
    apply_operator_rbac(plane, helm_bin, namespace, NAMED)
    cluster = Cluster(plane, namespace)
    kubeconfig = token_kubeconfig(plane, namespace, "parley-operator", tmp_path / "kubeconfig")
    env = operator_env(
        plane,
        database_url,
        namespace,
        KUBECONFIG=str(kubeconfig),
        OPERATOR_SECRET_NAMES="analyst-password",
        OPERATOR_SECRET_POLL_SECONDS="1",
    )
    operator = OperatorProcess(
        env=env,
        log_path=tmp_path / "operator.log",
        metrics_port=int(env["OPERATOR_METRICS_PORT"]),
        health_port=int(env["OPERATOR_HEALTH_PORT"]),
    )
    rotated = "a-rotated-long-password"
    try:
        cluster.apply(
            secret("analyst-password", PASSWORD, labelled=False),  # named mode needs no label
            apiuser("analyst", "analyst", secret_name="analyst-password"),
            secret("other-password", PASSWORD),
            apiuser("other", "other", secret_name="other-password"),
        )
        operator.start()
        cluster.wait_ready("analyst", reason="Synced")
        refused = cluster.wait_ready("other", status="False", reason="SecretNotAllowed")
        assert "(analyst-password), not " in refused["message"]
        assert await row_of(engine, "other") is None

        cluster.apply(secret("analyst-password", rotated, labelled=False))
        await wait_row(engine, "analyst", lambda row: verify_password(rotated, row.password_hash))
        log = operator.log()
        assert refusals(log) == []
    finally:
        code = operator.stop()
        cluster.kubectl("delete", "apiuser", "--all", "--wait=false", check=False)
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
