"""The kind + skaffold dev loop and the make targets fit the chart and the Dockerfile (no cluster here)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.chart.support import CHART, MONITORING, REPO, RenderFn, load, parse_stages, skaffold_sets

DEV = REPO / "manifests" / "dev"


def test_skaffold_builds_the_three_dockerfile_targets() -> None:
    """Three artifacts, one per Dockerfile target, from the repository root."""
    config = load(REPO / "skaffold.yaml")
    assert config["apiVersion"].startswith("skaffold/v4")
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == {"parley-api", "parley-bot", "parley-operator"}
    stages = parse_stages()
    for image, artifact in artifacts.items():
        assert artifact["context"] == "."
        assert artifact["docker"]["dockerfile"] == "Dockerfile"
        assert artifact["docker"]["target"] == image.removeprefix("parley-")
        assert artifact["docker"]["target"] in stages
    assert config["build"]["local"]["push"] is False


def test_skaffold_deploys_the_chart_with_existing_values_files() -> None:
    """The helm release points at charts/parley and at values files that exist (profiles included)."""
    config = load(REPO / "skaffold.yaml")
    (release,) = config["deploy"]["helm"]["releases"]
    assert (REPO / release["chartPath"]) == CHART
    for path in release["valuesFiles"]:
        assert (REPO / path).is_file(), path
    for profile in config["profiles"]:
        for patch in profile["patches"]:
            if isinstance(patch["value"], str) and patch["value"].endswith(".yaml"):
                assert (REPO / patch["value"]).is_file()


@pytest.mark.kube
@pytest.mark.parametrize("overlays", [[], ["parley-vault-values.yaml"]], ids=["dev", "dev-vault"])
def test_dev_values_render_with_skaffolds_images(render: RenderFn, overlays: list[str]) -> None:
    """The dev values (and the Vault overlay) render with the images skaffold sets."""
    values = [str(DEV / "parley-values.yaml"), *(str(DEV / o) for o in overlays)]
    rendered = render(values=values, sets=skaffold_sets(), api_versions=[MONITORING])
    api = rendered.get("Deployment", "parley-api")
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "parley-api:dev-0123abcd"
    monitors = rendered.of_kind("ServiceMonitor")
    assert monitors
    kps = load(DEV / "kube-prometheus-stack-values.yaml")
    selector = kps["prometheus"]["prometheusSpec"]["serviceMonitorSelector"]["matchLabels"]
    for monitor in monitors:
        assert selector.items() <= monitor["metadata"]["labels"].items()
    rule_selector = kps["prometheus"]["prometheusSpec"]["ruleSelector"]["matchLabels"]
    assert rule_selector.items() <= rendered.get("PrometheusRule", "parley")["metadata"]["labels"].items()
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    labels = rendered.get("ConfigMap", "parley-dashboard")["metadata"]["labels"]
    assert labels[sidecar["label"]] == sidecar["labelValue"]
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert ("VAULT_ADDR" in env) == bool(overlays)


def test_vault_setup_matches_the_charts_roles() -> None:
    """vault-setup.sh parses, and binds the roles the chart names to the chart's ServiceAccounts."""
    script = DEV / "vault-setup.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    defaults = load(CHART / "values.yaml")["vault"]
    for service in ("api", "bot", "operator", "migrations"):
        assert defaults[service]["role"] == f"parley-{service}"
    assert 'auth/kubernetes/role/parley-${svc}"' in text
    assert 'bound_service_account_names="parley-${svc}"' in text
    assert "audience=vault" in text
    assert load(CHART / "values.yaml")["vault"]["tokenAudience"] == "vault"


def test_kind_config() -> None:
    """A kind cluster named parley, ingress-ready, with 80/443 mapped to the host."""
    config = load(REPO / "manifests" / "kind-config.yaml")
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "parley"
    (node,) = config["nodes"]
    assert {m["containerPort"] for m in node["extraPortMappings"]} == {80, 443}
    assert "ingress-ready=true" in node["kubeadmConfigPatches"][0]


def test_make_targets_exist_with_help() -> None:
    """The Makefile's chart/dev/deploy targets exist and are listed by `make help`."""
    makefile = (REPO / "Makefile").read_text()
    for target in ("chart-lint", "up", "dev", "down", "deploy-production", "rollback-production"):
        assert re.search(rf"^{target}:.*## \S", makefile, re.MULTILINE), target
    refused = subprocess.run(
        ["make", "-s", "deploy-production", "HELM=true"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "set API_DIGEST, BOT_DIGEST and OPERATOR_DIGEST" in refused.stdout + refused.stderr
