"""Third-party checks on the chart's renders (docs/guides/chart-checks.md).

- kubeconform ``-strict`` against JSON schemas generated from the envtest kube-apiserver's OpenAPI v3,
  with the chart's ApiUser CRD and the Prometheus Operator CRDs installed first: nothing is downloaded.
- kube-score, with a short allowlist (every entry justified in the guide, and still needed).

Both tools are built by `make envtest`. Without its tool cache these tests skip (fail under CI=true);
a cache that exists but lacks them is stale, and they fail.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from parley_testing.envtest_tools import ENV_FILE_NAME, EnvtestTools, missing_tool, read_env_file, tools_dir
from parley_testing.kube import KubeControlPlane
from parley_testing.waiting import wait_for
from tests.chart.support import CHART, MONITORING, REPO, helm, skaffold_sets, template_args
from tests.support import kube_schemas

DEV = REPO / "manifests" / "dev"
GUIDE = REPO / "docs" / "guides" / "chart-checks.md"
# The default values plus what a production install (the default environment) must set: a secret source,
# and the API server's address for the operator's egress policy.
DEFAULT_SETS = ("secrets.existingSecret=parley-secrets", "networkPolicy.kubeAPIServer.cidrs={10.0.0.1/32}")


@dataclass(frozen=True)
class Render:
    """One `helm template` of the chart (CRDs included, with the Prometheus Operator API available)."""

    name: str
    values: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()


RENDERS = [
    Render("default", (), DEFAULT_SETS),
    Render("production", (str(CHART / "values-production.yaml"),)),
    # The kind dev loop (skaffold.yaml), with skaffold's image values, and its Vault profile.
    Render("dev", (str(DEV / "parley-values.yaml"),), tuple(skaffold_sets())),
    Render(
        "dev-vault",
        (str(DEV / "parley-values.yaml"), str(DEV / "parley-vault-values.yaml")),
        tuple(skaffold_sets()),
    ),
    # The templates no profile above renders: inline secrets, an inline external-database password and
    # the cluster-wide operator (tests/chart/values/dev.yaml gives the inline secrets).
    Render(
        "inline-secrets",
        ("dev",),
        (
            "postgresql.enabled=false",
            "database.host=db.example.internal",
            "database.password=dev-db-password",
            "operator.clusterWide=true",
        ),
    ),
]
RENDER_IDS = [r.name for r in RENDERS]
# Templates that render no object (besides the helper files, templates/_*.tpl).
NO_OBJECTS = {"templates/NOTES.txt", "templates/validate.yaml"}

# kube-score checks beyond its defaults, and the flag for its one sub-check we switch off: CPU limits
# (optional in the chart by design; memory limits and every request stay required).
KUBE_SCORE_FLAGS = (
    "--enable-optional-test=container-seccomp-profile",
    "--enable-optional-test=container-ports-check",
    "--ignore-container-cpu-limit",
    # The allowlist below is the only way past a check: no `kube-score/ignore` annotations.
    "--disable-ignore-checks-annotations",
)
# Accepted findings: kube-score test id -> the objects ("Kind/name") it may flag, None for every object.
# Each is justified in docs/guides/chart-checks.md; test_allowlist_is_needed_and_documented keeps it short.
KUBE_SCORE_ALLOWLIST: dict[str, frozenset[str] | None] = {
    "container-image-pull-policy": None,
    "container-ephemeral-storage-request-and-limit": None,
    "deployment-replicas": frozenset({"Deployment/parley-bot", "Deployment/parley-operator"}),
    "deployment-strategy": frozenset({"Deployment/parley-bot", "Deployment/parley-operator"}),
    "pod-probes": frozenset({"Deployment/parley-operator"}),
    "container-security-context-user-group-id": frozenset({"StatefulSet/parley-postgresql"}),
}
GRADE_ALL_OK = 10


def third_party_tool(tools: EnvtestTools, name: str) -> Path:
    """The path of a tool from `make envtest`: skip without its cache (fail in CI), fail if it is stale."""
    path = tools.paths.get(name)
    if path is not None and path.is_file() and os.access(path, os.X_OK):
        return path
    if not tools_dir().is_dir():
        missing_tool(f"{name} not installed ({tools_dir()} does not exist)")
    where = f"{path} is not an executable" if path else f"{tools.source} does not name it"
    pytest.fail(
        f"{name} is missing from the tool cache {tools_dir()} ({where}): the cache predates it; "
        "run `make envtest`",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def kubeconform_bin(envtest_tools: EnvtestTools) -> Path:
    """The pinned kubeconform."""
    return third_party_tool(envtest_tools, "kubeconform")


@pytest.fixture(scope="module")
def kube_score_bin(envtest_tools: EnvtestTools) -> Path:
    """The pinned kube-score."""
    return third_party_tool(envtest_tools, "kube-score")


@pytest.fixture(scope="module")
def rendered(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Render name -> file holding its `helm template --include-crds` output (hooks and tests included)."""
    directory = tmp_path_factory.mktemp("renders")
    files = {}
    for render in RENDERS:
        args = [*template_args(render.values, render.sets, [MONITORING]), "--include-crds"]
        result = helm(helm_bin, *args)
        assert result.returncode == 0, f"{render.name}: {result.stderr}"
        files[render.name] = directory / f"{render.name}.yaml"
        files[render.name].write_text(result.stdout, encoding="utf-8")
    return files


def api_server_getter(plane: KubeControlPlane) -> kube_schemas.JsonGetter:
    """GET a path of the envtest API server as cluster admin, decoded from JSON."""
    assert plane.pki is not None
    context = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
    context.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))
    server = urlsplit(plane.server)
    assert server.hostname is not None

    def get(path: str) -> Any:
        conn = http.client.HTTPSConnection(server.hostname or "", server.port, timeout=30, context=context)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 200, f"GET {path}: {response.status} {body[:300]!r}"
        return json.loads(body)

    return get


# The custom resources the renders use, as the API server names their OpenAPI components.
CUSTOM_COMPONENTS = (
    "dev.parley.v1alpha1.ApiUser",
    "com.coreos.monitoring.v1.ServiceMonitor",
    "com.coreos.monitoring.v1.PrometheusRule",
)


@pytest.fixture(scope="module")
def schema_location(
    kube_control_plane: KubeControlPlane, chart_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """kubeconform's -schema-location: strict schemas of every kind the envtest API server serves."""
    get = api_server_getter(kube_control_plane)

    def with_the_crds() -> dict[str, Any]:
        components = kube_schemas.fetch_components(get)
        if missing := set(CUSTOM_COMPONENTS) - components.keys():
            raise LookupError(f"CRDs not in /openapi/v3: {missing}")
        return components

    # CRDs reach the OpenAPI a moment late.
    components = wait_for(
        with_the_crds, "the CRDs in /openapi/v3", timeout=30, interval=0.5, retry_on=(LookupError,)
    )
    schemas = kube_schemas.kubeconform_schemas(components)
    return kube_schemas.write_schemas(tmp_path_factory.mktemp("kubeconform-schemas"), schemas)


def kubeconform(binary: Path, location: str, manifest: Path) -> list[dict[str, Any]]:
    """kubeconform -strict's verdict on every object of ``manifest`` (no schema found is an error)."""
    result = subprocess.run(
        [str(binary), "-strict", "-summary", "-output", "json", "-verbose", "-schema-location", location,
         str(manifest)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in {0, 1}, result.stderr
    assert not result.stderr
    resources: list[dict[str, Any]] = json.loads(result.stdout)["resources"]
    return resources


def documents(manifest: Path) -> list[dict[str, Any]]:
    """The objects of a rendered manifest."""
    return [doc for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if doc]


def test_schema_conversion_rules() -> None:
    """File names as kubeconform looks them up; objects closed unless a map or preserve-unknown-fields;
    nullable becomes a null type; references become local definitions, recursion included."""
    ref = kube_schemas.OPENAPI_REF
    components = {
        "x.Widget": {
            "type": "object",
            kube_schemas.GVK: [{"group": "example.com", "version": "v1", "kind": "Widget"}],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "spec": {"allOf": [{"$ref": ref + "x.Spec"}]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
                "note": {"type": "string", "nullable": True},
            },
        },
        "x.Spec": {"type": "object", "properties": {"children": {"items": {"$ref": ref + "x.Spec"}}}},
        "x.Status": {"type": "object", kube_schemas.GVK: [{"group": "", "version": "v1", "kind": "Status"}]},
    }
    files = kube_schemas.kubeconform_schemas(components)
    assert set(files) == {"widget-example-v1.json", "status-v1.json"}
    widget = files["widget-example-v1.json"]
    assert widget["additionalProperties"] is False
    props = widget["properties"]
    assert props["apiVersion"]["enum"] == ["example.com/v1"]
    assert props["kind"]["enum"] == ["Widget"]
    assert props["spec"] == {"allOf": [{"$ref": "#/definitions/x.Spec"}]}
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in props["raw"]
    assert props["note"]["type"] == ["string", "null"]
    assert set(widget["definitions"]) == {"x.Spec"}
    assert widget["definitions"]["x.Spec"]["properties"]["children"]["items"] == {
        "$ref": "#/definitions/x.Spec"
    }
    with pytest.raises(ValueError, match="does not publish"):
        kube_schemas.kubeconform_schemas({"x.Widget": components["x.Widget"]})


@pytest.mark.kube
@pytest.mark.parametrize("name", RENDER_IDS)
def test_kubeconform_strict_accepts_every_object(
    kubeconform_bin: Path, schema_location: str, rendered: dict[str, Path], name: str
) -> None:
    """Every object of the render, hooks, the helm test Pod and the CRDs included, is valid under -strict."""
    verdicts = kubeconform(kubeconform_bin, schema_location, rendered[name])
    problems = [
        f"{v['kind']}/{v['name']}: {v['status']} {v.get('msg', '')}"
        for v in verdicts
        if v["status"] != "statusValid"
    ]
    assert problems == []
    objects = documents(rendered[name])
    assert len(verdicts) == len(objects), "kubeconform did not see every object"
    kinds = {v["kind"] for v in verdicts}
    assert {"CustomResourceDefinition", "Deployment", "Job", "Pod", "NetworkPolicy"} <= kinds
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    hooks = {
        o["metadata"]["name"] for o in objects if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
    }
    assert "parley-tests-api-ready" in hooks
    assert "parley-migrations" in {o["metadata"]["name"] for o in objects}  # a hook, or the initial run


BAD_OBJECTS = [
    # A manifest and what kubeconform must say about it.
    pytest.param(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: web:1, livenesProbe: {tcpSocket: {port: 80}}}]
        """,
        "additional properties 'livenesProbe' not allowed",
        id="misspelled-field",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec: {ports: [{port: 80, protocol: TPC}]}
        """,
        "value must be one of",
        id="enum",
    ),
    pytest.param(
        """
        apiVersion: monitoring.coreos.com/v1
        kind: ServiceMonitor
        metadata: {name: web}
        spec: {selector: {}, endpoints: [{port: http, intervall: 30s}]}
        """,
        "additional properties 'intervall' not allowed",
        id="crd-misspelled-field",
    ),
    pytest.param(
        """
        apiVersion: parley.dev/v1alpha1
        kind: ApiUser
        metadata: {name: alice}
        spec: {username: alice, passwordSecretRef: {name: s, key: k}, clearance: top-secret}
        """,
        "additional properties 'clearance' not allowed",
        id="crd-unknown-field",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: web}
        data: {port: 8080}
        """,
        "got number, want string",
        id="wrong-type",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: web, name: other}
        """,
        "already set in map",
        id="duplicate-key",
    ),
    pytest.param(
        """
        apiVersion: parley.dev/v1
        kind: ApiUser
        metadata: {name: alice}
        """,
        "could not find schema",
        id="unknown-version",
    ),
]


@pytest.mark.kube
@pytest.mark.parametrize(("manifest", "message"), BAD_OBJECTS)
def test_kubeconform_refuses_what_the_api_server_would(
    kubeconform_bin: Path, schema_location: str, tmp_path: Path, manifest: str, message: str
) -> None:
    """The check is not vacuous: misspelled fields, wrong types and enums, duplicate keys, unknown kinds."""
    path = tmp_path / "bad.yaml"
    path.write_text(re.sub(r"(?m)^ {8}", "", manifest), encoding="utf-8")
    (verdict,) = kubeconform(kubeconform_bin, schema_location, path)
    assert verdict["status"] in {"statusInvalid", "statusError"}
    assert message in verdict.get("msg", ""), verdict


@pytest.mark.kube
def test_renders_cover_every_template(rendered: dict[str, Path]) -> None:
    """Each template that can render an object does so in at least one render checked here."""
    sources = set()
    for path in rendered.values():
        sources |= set(re.findall(r"(?m)^# Source: parley/(\S+)$", path.read_text(encoding="utf-8")))
    templates = {
        str(p.relative_to(CHART))
        for p in (CHART / "templates").rglob("*")
        if p.is_file() and not p.name.startswith("_")
    }
    assert templates - NO_OBJECTS - sources == set()


@dataclass
class Finding:
    """One failed kube-score check on one object."""

    check: str
    target: str  # Kind/name
    summaries: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.check} on {self.target}: {'; '.join(self.summaries)}"


def kube_score_version(tools: EnvtestTools) -> str:
    """The Kubernetes minor version (v1.NN) of the envtest tools, for kube-score's API deprecations."""
    version = os.environ.get("PARLEY_KUBE_VERSION") or read_env_file(tools_dir() / ENV_FILE_NAME).get(
        "PARLEY_KUBE_VERSION", ""
    )
    match = re.fullmatch(r"(v1\.\d+)\.\d+", version)
    assert match, f"PARLEY_KUBE_VERSION={version!r} in {tools.source}: run `make envtest`"
    return match.group(1)


def kube_score(binary: Path, kubernetes_version: str, manifest: Path) -> list[Finding]:
    """kube-score's failed checks (grade below all-OK, not skipped) on the objects of ``manifest``."""
    result = subprocess.run(
        [str(binary), "score", "--output-format=json", f"--kubernetes-version={kubernetes_version}",
         *KUBE_SCORE_FLAGS, str(manifest)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in {0, 1}, result.stderr
    assert not result.stderr
    findings = []
    for scored in json.loads(result.stdout):
        target = f"{scored['type_meta']['kind']}/{scored['object_meta']['name']}"
        for check in scored["checks"]:
            if check["skipped"] or check["grade"] >= GRADE_ALL_OK:
                continue
            summaries = [
                f"{c['path']}: {c['summary']}" if c["path"] else c["summary"] for c in check["comments"]
            ]
            findings.append(Finding(check["check"]["id"], target, summaries))
    return findings


def allowed(finding: Finding) -> bool:
    """Whether the allowlist accepts ``finding``."""
    if finding.check not in KUBE_SCORE_ALLOWLIST:
        return False
    targets = KUBE_SCORE_ALLOWLIST[finding.check]
    return targets is None or finding.target in targets


@pytest.fixture(scope="module")
def kube_score_findings(
    kube_score_bin: Path, envtest_tools: EnvtestTools, rendered: dict[str, Path]
) -> dict[str, list[Finding]]:
    """Render name -> kube-score's findings on it."""
    version = kube_score_version(envtest_tools)
    return {name: kube_score(kube_score_bin, version, path) for name, path in rendered.items()}


@pytest.mark.kube
@pytest.mark.parametrize("name", RENDER_IDS)
def test_kube_score_finds_nothing_beyond_the_allowlist(
    kube_score_findings: dict[str, list[Finding]], name: str
) -> None:
    """Every kube-score check passes on the render, but for the allowlisted design decisions."""
    assert [str(f) for f in kube_score_findings[name] if not allowed(f)] == []


@pytest.mark.kube
def test_allowlist_is_needed_and_documented(kube_score_findings: dict[str, list[Finding]]) -> None:
    """Each allowlisted check and object is flagged in some render (else it goes) and has its reason."""
    findings = [f for found in kube_score_findings.values() for f in found]
    for check, targets in KUBE_SCORE_ALLOWLIST.items():
        flagged = {f.target for f in findings if f.check == check}
        assert flagged, f"{check} is allowlisted but kube-score no longer flags it: remove it"
        assert targets is None or targets <= flagged, (
            f"{check}: {sorted(targets - flagged)} no longer flagged"
        )
    guide = GUIDE.read_text(encoding="utf-8")
    for check in [*KUBE_SCORE_ALLOWLIST, "--ignore-container-cpu-limit"]:
        assert f"`{check}`" in guide, f"{check} is not explained in {GUIDE.relative_to(REPO)}"
