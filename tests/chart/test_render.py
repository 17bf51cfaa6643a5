"""`helm lint` and `helm template` of charts/parley with several values files, parsed and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.support import (
    CHART,
    MONITORING,
    REPO,
    FailFn,
    Rendered,
    RenderFn,
    env_of,
    helm,
    pod_spec,
)

pytestmark = pytest.mark.kube

WORKLOADS = ("Deployment", "StatefulSet", "Job", "Pod")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a container must listen on
VALUE_SETS = [("dev",), ("webhook",), ("external-db",), (str(CHART / "values-production.yaml"),)]
# The defaults are environment=production with NetworkPolicies: the API server's addresses are required.
API_SERVER = "networkPolicy.kubeAPIServer.cidrs={10.0.0.1/32}"


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    """Every object that runs pods."""
    return [o for o in rendered.objects if o["kind"] in WORKLOADS]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a workload's pod."""
    spec = pod_spec(workload)
    result: list[dict[str, Any]] = spec["containers"]
    return result


@pytest.mark.parametrize("values", [[], ["dev"], ["webhook"], ["external-db"]])
def test_helm_lint_strict(helm_bin: Path, values: list[str]) -> None:
    """`helm lint --strict` passes with each values file (the defaults need only the bot's secrets)."""
    args: list[str | Path] = ["lint", "--strict", CHART]
    for name in values:
        args += ["--values", Path(__file__).parent / "values" / f"{name}.yaml"]
    if not values:
        args += ["--set", "secrets.existingSecret=parley-secrets", "--set", API_SERVER]
    result = helm(helm_bin, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUE_SETS, ids=["dev", "webhook", "external-db", "production"])
def test_restricted_security_everywhere(render: RenderFn, values: tuple[str, ...]) -> None:
    """Pods: non-root, seccomp RuntimeDefault; containers: read-only root, no escalation, drop ALL."""
    rendered = render(values=values)
    assert workloads(rendered)
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("hostNetwork") is not True, name
        for container in containers(workload):
            security = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            assert security.get("privileged") is not True, where
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"]["memory"], where


@pytest.mark.parametrize("values", VALUE_SETS, ids=["dev", "webhook", "external-db", "production"])
def test_service_account_token_only_where_needed(render: RenderFn, values: tuple[str, ...]) -> None:
    """Only the operator mounts an API token; with Vault, pods that log in get a projected audience token."""
    rendered = render(values=values)
    vault = any("VAULT_ADDR" in env_of(c) for w in workloads(rendered) for c in containers(w))
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        expected = component == "operator"
        assert spec["automountServiceAccountToken"] is expected, workload["metadata"]["name"]
        projected = [v for v in spec.get("volumes") or [] if "projected" in v]
        if vault and component in {"api", "bot", "operator", "migrations"}:
            assert len(projected) == 1, workload["metadata"]["name"]
            source = projected[0]["projected"]["sources"][0]["serviceAccountToken"]
            assert source["audience"] == "vault"
            assert source["expirationSeconds"] >= 600
        else:
            assert projected == [], workload["metadata"]["name"]
    for account in rendered.of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_probes_point_at_each_services_endpoints(render: RenderFn) -> None:
    """API and bot: startup+liveness on /health, readiness on /ready — the API's on its management port,
    which no Ingress routes; operator: kopf's /healthz."""
    rendered = render()
    expected = {
        "parley-api": ("management", {"http": 8000, "management": 9090}, "/health", "/ready"),
        "parley-bot": ("http", {"http": 8080}, "/health", "/ready"),
    }
    for name, (port_name, ports, live, ready) in expected.items():
        (container,) = containers(rendered.get("Deployment", name))
        assert container["ports"] == [
            {"name": name_, "containerPort": number, "protocol": "TCP"} for name_, number in ports.items()
        ]
        assert container["startupProbe"]["httpGet"] == {"path": live, "port": port_name}
        assert container["livenessProbe"]["httpGet"] == {"path": live, "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": port_name}
        # Startup allows a slow first start (migrations pending, cold caches) without liveness kills.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    (operator,) = containers(rendered.get("Deployment", "parley-operator"))
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"health": 8080, "metrics": 9090}
    configs = {c["metadata"]["name"]: c["data"] for c in rendered.of_kind("ConfigMap")}
    assert configs["parley-operator"]["OPERATOR_HEALTH_PORT"] == "8080"
    assert configs["parley-operator"]["OPERATOR_METRICS_PORT"] == "9090"
    assert configs["parley-operator"]["OPERATOR_HOST"] == ALL_INTERFACES
    assert configs["parley-bot"]["BOT_HOST"] == ALL_INTERFACES
    assert configs["parley-bot"]["BOT_PORT"] == "8080"
    pools = {
        name: (data["DB_POOL_SIZE"], data["DB_MAX_OVERFLOW"])
        for name, data in configs.items()
        if "DB_HOST" in data
    }
    assert pools == {  # each service its own pool; the bot's is fixed (overflow churns connections)
        "parley-api": ("20", "30"),
        "parley-bot": ("20", "0"),
        "parley-operator": ("2", "2"),
        "parley-migrations": ("1", "0"),
    }


def test_api_drains_before_its_listener_closes(render: RenderFn) -> None:
    """SHUTDOWN_DELAY_SECONDS about 5, API_HOST=0.0.0.0, grace period >= 40 s and above delay + timeout."""
    rendered = render()
    data = rendered.get("ConfigMap", "parley-api")["data"]
    assert data["API_HOST"] == ALL_INTERFACES
    assert data["API_PORT"] == "8000"
    assert data["SHUTDOWN_DELAY_SECONDS"] == "5"
    spec = pod_spec(rendered.get("Deployment", "parley-api"))
    grace = spec["terminationGracePeriodSeconds"]
    assert grace >= 40
    assert grace > float(data["SHUTDOWN_DELAY_SECONDS"]) + float(data["SHUTDOWN_TIMEOUT_SECONDS"])


def test_polling_bot_is_one_replica_recreate(render: RenderFn) -> None:
    """Polling: exactly one replica, Recreate (the old poller stops before the new one starts)."""
    bot = render().get("Deployment", "parley-bot")
    assert bot["spec"]["replicas"] == 1
    assert bot["spec"]["strategy"] == {"type": "Recreate"}
    assert env_of(containers(bot)[0]).get("TELEGRAM_WEBHOOK_SECRET") is None


def test_webhook_bot_scales_and_rolls(render: RenderFn) -> None:
    """Webhook: N replicas, RollingUpdate, a PDB, the webhook secret and an Ingress on its path."""
    rendered = render(values=["webhook"])
    bot = rendered.get("Deployment", "parley-bot")
    assert bot["spec"]["replicas"] == 3
    assert bot["spec"]["strategy"]["type"] == "RollingUpdate"
    assert bot["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = env_of(containers(bot)[0])
    assert env["TELEGRAM_WEBHOOK_SECRET"]["secretKeyRef"] == {
        "name": "parley-app-secrets",
        "key": "telegram_webhook_secret",
        "optional": False,
    }
    data = rendered.get("ConfigMap", "parley-bot")["data"]
    assert data["BOT_MODE"] == "webhook"
    assert data["TELEGRAM_WEBHOOK_URL"] == "https://bot.example.com/telegram/webhook"
    assert rendered.get("PodDisruptionBudget", "parley-bot")["spec"]["maxUnavailable"] == 1
    ingress = rendered.get("Ingress", "parley-bot")
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/telegram/webhook"
    assert path["pathType"] == "Exact"


def test_api_replicas_hpa_pdb_and_ingress(render: RenderFn) -> None:
    """At least two API replicas with a PDB; with autoscaling the HPA owns replicas; Ingress with TLS."""
    default = render()
    api = default.get("Deployment", "parley-api")
    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert default.get("PodDisruptionBudget", "parley-api")["spec"]["minAvailable"] == 1
    assert default.of_kind("HorizontalPodAutoscaler") == []
    assert default.of_kind("Ingress") == []

    scaled = render(values=["webhook"])
    assert "replicas" not in scaled.get("Deployment", "parley-api")["spec"]
    hpa = scaled.get("HorizontalPodAutoscaler", "parley-api")
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["scaleTargetRef"]["name"] == "parley-api"
    ingress = scaled.get("Ingress", "parley-api")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["parley.example.com"], "secretName": "parley.example.com-tls"}
    ]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"


def test_operator_single_replica_recreate_own_account(render: RenderFn) -> None:
    """The operator: one replica, Recreate, its own ServiceAccount bound to a namespaced Role."""
    rendered = render()
    operator = rendered.get("Deployment", "parley-operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(operator)["serviceAccountName"] == "parley-operator"
    binding = rendered.get("RoleBinding", "parley-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "parley-operator", "namespace": "parley"}
    ]
    assert binding["roleRef"]["name"] == "parley-operator"
    assert rendered.of_kind("ClusterRole") == []  # nothing cluster-scoped: kopf's scanning is off
    rules = rendered.get("Role", "parley-operator")["rules"]
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert verbs[("parley.dev", "apiusers")] == {"get", "list", "watch", "patch"}
    assert verbs[("parley.dev", "apiusers/status")] == {"patch"}
    assert verbs[("", "secrets")] == {"list", "watch"}  # label mode: no get on any Secret
    (secret_rule,) = [rule for rule in rules if "secrets" in rule["resources"]]
    assert "resourceNames" not in secret_rule  # RBAC cannot filter by label: the operator does
    assert verbs[("", "events")] == {"create"}
    assert all("*" not in v for v in verbs.values())
    # The same rules as the operator's own least-privilege manifest (docs/operator.md#rbac).
    manifests = yaml.safe_load_all((REPO / "manifests" / "operator-rbac.yaml").read_text())
    (role,) = [d for d in manifests if d and d["kind"] == "Role"]
    assert rules == role["rules"]
    assert rendered.get("ConfigMap", "parley-operator")["data"]["OPERATOR_NAMESPACES"] == "parley"
    data = rendered.get("ConfigMap", "parley-operator")["data"]
    assert data["OPERATOR_SECRET_LABEL_SELECTOR"] == "parley.dev/apiuser-password=true"
    assert "OPERATOR_SECRET_NAMES" not in data


def secret_rules(rendered: Rendered, kind: str = "Role") -> list[dict[str, Any]]:
    """The rules about Secrets in each rendered Role (or ClusterRole)."""
    return [
        rule for role in rendered.of_kind(kind) for rule in role["rules"] if "secrets" in rule["resources"]
    ]


def test_operator_named_secrets_are_resource_names_with_get_only(render: RenderFn) -> None:
    """operator.secrets.names: get on exactly those Secrets, in every Role or the ClusterRole; the
    operator is told the names (named mode) and no label selector."""
    names = "operator.secrets.names={parley-apiuser-passwords,analyst-password}"
    named = render(values=["dev", "external-db"], sets=[names, "operator.secrets.pollSeconds=10"])
    expected = {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["parley-apiuser-passwords", "analyst-password"],
        "verbs": ["get"],
    }
    assert secret_rules(named) == [expected, expected]  # one Role per watched namespace
    data = named.get("ConfigMap", "parley-operator")["data"]
    assert data["OPERATOR_SECRET_NAMES"] == "parley-apiuser-passwords,analyst-password"
    assert data["OPERATOR_SECRET_POLL_SECONDS"] == "10"
    assert "OPERATOR_SECRET_LABEL_SELECTOR" not in data
    wide = render(sets=[names, "operator.clusterWide=true"])
    assert secret_rules(wide, "ClusterRole") == [expected]
    production = render(values=[str(CHART / "values-production.yaml")])
    assert secret_rules(production) == [expected | {"resourceNames": ["parley-apiuser-passwords"]}]
    custom = render(sets=[r"operator.secrets.labelSelector=team=dashboards\,parley.dev/pw"])
    assert custom.get("ConfigMap", "parley-operator")["data"]["OPERATOR_SECRET_LABEL_SELECTOR"] == (
        "team=dashboards,parley.dev/pw"
    )


@pytest.mark.parametrize("selector", ["a!=b", "!a", "a in (b)", "a=b c"])
def test_a_selector_that_matches_unlabelled_secrets_is_refused(render_error: FailFn, selector: str) -> None:
    """The schema accepts only key=value and key terms: each term must require a label."""
    assert "/operator/secrets/labelSelector" in render_error(
        sets=[f"operator.secrets.labelSelector={selector}"]
    )


def test_production_needs_the_api_servers_cidrs(
    render: RenderFn, render_error: FailFn, tmp_path: Path
) -> None:
    """environment=production with NetworkPolicies: an empty kubeAPIServer.cidrs fails, saying how to find
    the addresses; the profile's placeholder renders the operator's egress to exactly that CIDR."""
    open_egress = tmp_path / "open-egress.yaml"
    open_egress.write_text("networkPolicy:\n  kubeAPIServer:\n    cidrs: []\n")
    production = str(CHART / "values-production.yaml")

    stderr = render_error(values=[production, str(open_egress)])

    assert "PARLEY VALUES ERROR" in stderr
    assert (
        "environment=production with networkPolicy.enabled needs networkPolicy.kubeAPIServer.cidrs" in stderr
    )
    assert "any address on ports 443, 6443" in stderr
    assert (
        "kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes "
        "-o jsonpath='{.items[*].endpoints[*].addresses}'"
    ) in stderr
    assert "<address>/32" in stderr
    # Not outside production, nor without NetworkPolicies.
    render(values=["dev", str(open_egress)])
    render(values=[production, str(open_egress)], sets=["networkPolicy.enabled=false"])
    policy = render(values=[production]).get("NetworkPolicy", "parley-operator")["spec"]
    api_server = [rule for rule in policy["egress"] if {"port": 6443, "protocol": "TCP"} in rule["ports"]]
    assert api_server == [
        {
            "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}],
        }
    ]


def test_operator_watch_namespaces_and_cluster_wide(render: RenderFn) -> None:
    """watchNamespaces: a Role per namespace; clusterWide: one ClusterRole, OPERATOR_NAMESPACES empty."""
    several = render(values=["dev", "external-db"])
    assert {(r["metadata"]["namespace"]) for r in several.of_kind("Role")} == {"parley", "dashboards"}
    assert several.get("ConfigMap", "parley-operator")["data"]["OPERATOR_NAMESPACES"] == "parley,dashboards"
    wide = render(sets=["operator.clusterWide=true"])
    assert wide.of_kind("Role") == []
    assert wide.names("ClusterRole") == {"parley-parley-operator"}
    assert wide.names("ClusterRoleBinding") == {"parley-parley-operator"}
    assert wide.get("ConfigMap", "parley-operator")["data"]["OPERATOR_NAMESPACES"] == ""


def test_migration_hook_and_its_inputs(render: RenderFn) -> None:
    """The Job is a hook; its ConfigMap/Secret/ServiceAccount: hooks of lower weight, before-hook-creation."""
    for values, upgrade, events in (
        (["dev"], True, "pre-upgrade"),
        (["dev", "external-db"], False, "pre-install,pre-upgrade"),
        (["dev", "external-db"], True, "pre-install,pre-upgrade"),
    ):
        rendered = render(values=values, upgrade=upgrade)
        job = rendered.get("Job", "parley-migrations")
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == events
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        job_weight = int(annotations["helm.sh/hook-weight"])
        (container,) = containers(job)
        assert container["command"] == ["alembic", "-c", "/app/alembic.ini", "upgrade", "head"]
        used = {container["envFrom"][0]["configMapRef"]["name"]}
        password = env_of(container)["DB_PASSWORD"]["secretKeyRef"]
        inputs = [
            rendered.get("ConfigMap", "parley-migrations"),
            rendered.get("ServiceAccount", "parley-migrations"),
        ]
        if password["name"] == "parley-migrations":
            inputs.append(rendered.get("Secret", "parley-migrations"))
            used.add(password["name"])
        for obj in inputs:
            hook = obj["metadata"]["annotations"]
            assert hook["helm.sh/hook"] == events, obj["metadata"]["name"]
            assert int(hook["helm.sh/hook-weight"]) < job_weight
            assert "before-hook-creation" in hook["helm.sh/hook-delete-policy"]
        assert used <= {o["metadata"]["name"] for o in inputs}
    # With an existing database Secret the Job reads it directly: it exists before any hook.
    external = render(values=["dev", "external-db"])
    (container,) = containers(external.get("Job", "parley-migrations"))
    assert env_of(container)["DB_PASSWORD"]["secretKeyRef"] == {"name": "parley-db", "key": "password"}
    assert "Secret" not in {
        o["kind"] for o in external.objects if o["metadata"]["name"] == "parley-migrations"
    }


def test_the_first_install_with_the_bundled_database_migrates_with_an_ordinary_job(render: RenderFn) -> None:
    """No hook at all on that install: `helm install --wait` waits for ready pods before post-install
    hooks, and the API is ready only after the migration (a hook would deadlock the install)."""
    rendered = render(values=["dev"])
    objects = [o for o in rendered.objects if o["metadata"]["name"] == "parley-migrations"]
    assert {o["kind"] for o in objects} == {"Job", "ConfigMap", "Secret", "ServiceAccount", "NetworkPolicy"}
    assert [o["metadata"].get("annotations") for o in objects] == [None] * len(objects)
    (container,) = containers(rendered.get("Job", "parley-migrations"))
    assert container["command"] == ["alembic", "-c", "/app/alembic.ini", "upgrade", "head"]
    annotated = render(values=["dev"], sets=["commonAnnotations.team=sre"])
    assert annotated.get("Job", "parley-migrations")["metadata"]["annotations"] == {"team": "sre"}


def test_migration_password_matches_the_databases(render: RenderFn) -> None:
    """The generated PostgreSQL password is generated once per render: the hook's copy is the same."""
    rendered = render()
    database = rendered.get("Secret", "parley-postgresql")["data"]["password"]
    assert rendered.get("Secret", "parley-migrations")["data"]["db_password"] == database
    for name in ("parley-api", "parley-bot", "parley-operator"):
        env = env_of(containers(rendered.get("Deployment", name))[0])
        assert env["DB_PASSWORD"]["secretKeyRef"] == {"name": "parley-postgresql", "key": "password"}
    assert rendered.get("ConfigMap", "parley-api")["data"]["DB_HOST"] == "parley-postgresql"


def test_external_database_and_vault(render: RenderFn) -> None:
    """No StatefulSet; DB_* from values; Vault env and no Kubernetes Secret references for app secrets."""
    rendered = render(values=["dev", "external-db"])
    assert rendered.of_kind("StatefulSet") == []
    data = rendered.get("ConfigMap", "parley-api")["data"]
    assert (data["DB_HOST"], data["DB_PORT"]) == ("db.example.internal", "6432")
    expected_paths = {
        "parley-api": "parley/api",
        "parley-bot": "parley/bot",
        "parley-operator": "parley/operator",
    }
    for name, path in expected_paths.items():
        deployment = rendered.get("Deployment", name)
        env = env_of(containers(deployment)[0])
        assert env["VAULT_ADDR"] == "https://vault.vault.svc:8200"
        assert env["VAULT_AUTH_METHOD"] == "kubernetes"
        assert env["VAULT_ROLE"] == name
        assert env["VAULT_SECRET_PATH"] == path
        assert env["VAULT_K8S_TOKEN_PATH"] == "/var/run/secrets/vault/token"
        assert env["VAULT_CACERT"] == "/etc/parley/vault-ca/ca.crt"
        secret_refs = {
            v["secretKeyRef"]["name"] for v in env.values() if isinstance(v, dict) and "secretKeyRef" in v
        }
        assert secret_refs == {"parley-db"}, name
        mounts = {m["mountPath"] for m in containers(deployment)[0]["volumeMounts"]}
        assert "/var/run/secrets/vault" in mounts
    assert "parley-secrets" not in rendered.names("Secret")
    job_env = env_of(containers(rendered.get("Job", "parley-migrations"))[0])
    assert job_env["VAULT_ROLE"] == "parley-migrations"


def test_database_password_only_in_vault(render: RenderFn) -> None:
    """database.passwordFromVault (production): no Secret, no env var carries the password; every pod
    and the migrations Job get their Vault role instead."""
    rendered = render(values=[str(CHART / "values-production.yaml")])
    for secret in rendered.of_kind("Secret"):
        assert not {"db_password", "password"} & set(secret.get("data") or {}), secret["metadata"]["name"]
    for workload in workloads(rendered):
        for container in containers(workload):
            env = env_of(container)
            assert "DB_PASSWORD" not in env, workload["metadata"]["name"]
            assert "DATABASE_URL" not in env, workload["metadata"]["name"]
    for kind, name in [("Deployment", f"parley-{c}") for c in ("api", "bot", "operator")] + [
        ("Job", "parley-migrations")
    ]:
        assert env_of(containers(rendered.get(kind, name))[0])["VAULT_ROLE"] == name


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["database.passwordFromVault=true", "vault.enabled=false", "database.password="],
            "database.passwordFromVault=true needs vault.enabled=true",
        ),
        (
            ["database.passwordFromVault=true", "postgresql.enabled=true"],
            "database.passwordFromVault=true is for an external database",
        ),
        (
            ["database.passwordFromVault=false", "database.existingSecret=", "database.password="],
            "needs its password: database.passwordFromVault=true",
        ),
    ],
)
def test_database_password_source_is_validated(render_error: FailFn, sets: list[str], message: str) -> None:
    """Contradicting or missing password sources fail the render with a message saying what to set."""
    assert message in render_error(values=["dev", "external-db"], sets=sets)


def test_secrets_without_vault(render: RenderFn) -> None:
    """Without Vault the bot's and API's secret settings come from the Secret, per key."""
    rendered = render()
    bot_env = env_of(containers(rendered.get("Deployment", "parley-bot"))[0])
    assert bot_env["TELEGRAM_BOT_TOKEN"]["secretKeyRef"]["name"] == "parley-secrets"
    assert bot_env["LLM_API_KEY"]["secretKeyRef"]["key"] == "llm_api_key"
    assert not any(name.startswith("VAULT_") for name in bot_env)
    api_env = env_of(containers(rendered.get("Deployment", "parley-api"))[0])
    assert api_env["ADMIN_REGISTRATION_TOKEN"]["secretKeyRef"]["optional"] is True
    assert "TELEGRAM_BOT_TOKEN" not in api_env  # each service gets only its own secrets
    assert set(rendered.get("Secret", "parley-secrets")["data"]) == {
        "telegram_bot_token",
        "llm_api_key",
        "admin_registration_token",
    }


def test_checksums_roll_pods_on_config_changes(render: RenderFn) -> None:
    """A changed ConfigMap value changes the pod template's checksum annotation."""
    before = render().get("Deployment", "parley-api")["spec"]["template"]["metadata"]["annotations"]
    after = render(sets=["logLevel=DEBUG"]).get("Deployment", "parley-api")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secrets"] == after["checksum/secrets"]


def test_images_by_tag_digest_and_registry(render: RenderFn) -> None:
    """Tag defaults to appVersion; a digest wins over the tag; global.imageRegistry overrides registries."""
    images = {w["metadata"]["name"]: containers(w)[0]["image"] for w in workloads(render())}
    assert images["parley-api"] == "ghcr.io/parley/parley-api:0.1.0"
    assert images["parley-migrations"] == images["parley-api"]
    digest = "sha256:" + "a" * 64
    pinned = render(sets=[f"api.image.digest={digest}", "global.imageRegistry=mirror.local:5000"])
    images = {w["metadata"]["name"]: containers(w)[0]["image"] for w in workloads(pinned)}
    assert images["parley-api"] == f"mirror.local:5000/parley/parley-api@{digest}"
    assert images["parley-bot"] == "mirror.local:5000/parley/parley-bot:0.1.0"


def test_standard_labels(render: RenderFn) -> None:
    """Every object carries the app.kubernetes.io/* labels; selectors use the immutable subset."""
    rendered = render(sets=["commonLabels.team=sre"])
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        for key in ("name", "instance", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (obj["kind"], obj["metadata"]["name"])
        assert labels["team"] == "sre"
    for deployment in rendered.of_kind("Deployment"):
        assert set(deployment["spec"]["selector"]["matchLabels"]) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }


def test_service_monitors_only_with_the_api_or_forced(render: RenderFn) -> None:
    """No monitoring.coreos.com/v1: no ServiceMonitor/PrometheusRule; with it (or forced) they render."""
    plain = render()
    assert plain.of_kind("ServiceMonitor") == []
    assert plain.of_kind("PrometheusRule") == []

    with_api = render(api_versions=[MONITORING], sets=["metrics.serviceMonitor.labels.release=kps"])
    monitors = {m["metadata"]["name"]: m for m in with_api.of_kind("ServiceMonitor")}
    assert set(monitors) == {"parley-api", "parley-bot", "parley-operator", "parley-postgresql"}
    assert monitors["parley-api"]["spec"]["endpoints"][0]["port"] == "management"  # not the Ingress port
    assert monitors["parley-operator"]["spec"]["endpoints"][0]["port"] == "metrics"
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in with_api.of_kind("Service")
            if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
            and any(p["name"] == monitor["spec"]["endpoints"][0]["port"] for p in s["spec"]["ports"])
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
    assert with_api.names("PrometheusRule") == {"parley"}

    forced = render(sets=["metrics.serviceMonitor.force=true"])
    assert len(forced.of_kind("ServiceMonitor")) == 4
    assert forced.of_kind("PrometheusRule") == []
    off = render(
        api_versions=[MONITORING],
        sets=["metrics.serviceMonitor.enabled=false", "metrics.prometheusRule.enabled=false"],
    )
    assert off.of_kind("ServiceMonitor") == []
    assert off.of_kind("PrometheusRule") == []


def test_dashboard_configmap_for_the_sidecar(render: RenderFn) -> None:
    """The dashboard ConfigMap carries the sidecar label and valid JSON naming this release's services."""
    import json  # noqa: PLC0415

    configmap = render().get("ConfigMap", "parley-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["parley.json"])
    assert dashboard["uid"] == "parley-overview"
    release = next(v for v in dashboard["templating"]["list"] if v["name"] == "release")
    assert release["query"] == "parley"


def test_network_policies(render: RenderFn) -> None:
    """Egress: DNS, PostgreSQL, Vault; 443 for the bot only; the API server's ports for the operator only."""
    rendered = render(values=["dev", "external-db"])
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("NetworkPolicy")}
    components = {"api", "bot", "operator", "migrations"}
    assert set(policies) == {f"parley-{component}" for component in components} | {"parley-tests-pod"}

    def ports(spec: dict[str, Any]) -> set[int]:
        return {p["port"] for rule in spec["egress"] for p in rule.get("ports", [])}

    base = {53, 6432, 8200}
    assert ports(policies["parley-api"]) == base
    assert ports(policies["parley-migrations"]) == base
    assert ports(policies["parley-bot"]) == base | {443}
    assert ports(policies["parley-operator"]) == base | {443, 6443}
    assert ports(policies["parley-tests-pod"]) == {53, 9090}  # `helm test`: DNS and the API's management port
    for spec in policies.values():
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        for rule in spec["egress"]:
            assert rule.get("to") != [], "an egress rule must not open every destination by accident"
    https = next(
        r for r in policies["parley-bot"]["egress"] if {"port": 443, "protocol": "TCP"} in r["ports"]
    )
    assert https["to"][0]["ipBlock"]["except"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    db = next(r for r in policies["parley-api"]["egress"] if r["ports"][0]["port"] == 6432)
    assert db["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    bundled = {p["metadata"]["name"]: p["spec"] for p in render().of_kind("NetworkPolicy")}
    assert bundled["parley-postgresql"]["egress"] == []
    db_from = bundled["parley-postgresql"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]
    assert {
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": ["api", "bot", "operator", "migrations"],
    } in db_from
    assert render(sets=["networkPolicy.enabled=false"]).of_kind("NetworkPolicy") == []


def test_helm_test_pod_checks_ready(render: RenderFn) -> None:
    """`helm test` runs a hook Pod that GETs the API Service's /ready."""
    pod = render().get("Pod", "parley-tests-api-ready")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert "http://parley-api:9090/ready" in container["command"][-1]  # the management port


def test_schema_refuses_unknown_keys(render_error: FailFn) -> None:
    """values.schema.json rejects a misspelled key at the top, nested and deep levels."""
    assert "additional properties 'replicaCont' not allowed" in render_error(sets=["api.replicaCont=3"])
    assert "additional properties 'enable' not allowed" in render_error(sets=["api.ingress.enable=true"])
    assert "additional properties 'tyep' not allowed" in render_error(
        sets=["podSecurityContext.seccompProfile.tyep=x"]
    )
    assert "additional properties 'bots' not allowed" in render_error(sets=["bots.mode=webhook"])
    assert "bot/mode" in render_error(sets=["bot.mode=pull"])
    assert "digest" in render_error(sets=["api.image.digest=latest"])
    assert "webhook/url" in render_error(sets=["bot.webhook.url=http://x.example/hook"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["bot.replicaCount=2"], "bot.mode=polling runs exactly one replica"),
        (["bot.mode=webhook"], "bot.mode=webhook needs bot.webhook.url"),
        (["api.pdb.maxUnavailable=1"], "set only one of api.pdb.minAvailable and api.pdb.maxUnavailable"),
        (["api.service.type=LoadBalancer"], "would publish the management port"),
        (["postgresql.enabled=false"], "postgresql.enabled=false (external database) needs database.host"),
        (["postgresql.enabled=false", "database.host=db"], "needs its password: database.passwordFromVault"),
        (["vault.enabled=true"], "vault.enabled=true needs vault.address"),
        (
            ["api.terminationGracePeriodSeconds=30"],
            "must exceed api.shutdownDelaySeconds + api.shutdownTimeoutSeconds",
        ),
        (["secrets.telegramBotToken="], "the bot needs its secrets"),
        (
            ["operator.clusterWide=true", "operator.watchNamespaces={a}"],
            "leave operator.watchNamespaces empty",
        ),
        (
            ["operator.secrets.labelSelector="],
            "operator.secrets: set labelSelector (label mode, e.g. parley.dev/apiuser-password=true)",
        ),
    ],
)
def test_validate_values_messages(render_error: FailFn, sets: list[str], message: str) -> None:
    """Contradictory values fail rendering with a readable message naming the values."""
    stderr = render_error(sets=sets)
    assert "PARLEY VALUES ERROR" in stderr
    assert message in stderr


def test_bot_can_be_disabled(render: RenderFn) -> None:
    """bot.enabled=false renders no bot objects and needs no bot secrets."""
    rendered = render(values=[], sets=["bot.enabled=false", API_SERVER], api_versions=[MONITORING])
    assert not [o for o in rendered.objects if o["metadata"]["name"].startswith("parley-bot")]


def test_production_memory_requests_equal_limits(render: RenderFn) -> None:
    """values-production.yaml: the API's and the bot's memory is reserved as much as it may use."""
    rendered = render(values=[str(CHART / "values-production.yaml")])
    for name in ("parley-api", "parley-bot"):
        resources = containers(rendered.get("Deployment", name))[0]["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"], name


def test_the_migration_waits_for_the_database(render: RenderFn) -> None:
    """The first install's Job waits for the bundled PostgreSQL instead of failing until it is up."""
    assert render().get("ConfigMap", "parley-migrations")["data"]["MIGRATIONS_WAIT_SECONDS"] == "180"
    shorter = render(sets=["migrations.waitSeconds=30"])
    assert shorter.get("ConfigMap", "parley-migrations")["data"]["MIGRATIONS_WAIT_SECONDS"] == "30"


def test_llm_prices_reach_the_bot_as_json(render: RenderFn, render_error: FailFn) -> None:
    assert "LLM_PRICES" not in render().get("ConfigMap", "parley-bot")["data"]
    priced = render(values=["dev", "llm-prices"])
    prices = json.loads(priced.get("ConfigMap", "parley-bot")["data"]["LLM_PRICES"])
    assert prices == {"openai/gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}
    assert "completion" in render_error(sets=["bot.llm.prices.m.prompt=1"])
    assert "input" in render_error(sets=["bot.llm.prices.m.input=1", "bot.llm.prices.m.completion=1"])


def test_budgets_reach_the_bot_and_the_api_and_unset_limits_stay_unset(
    render: RenderFn, render_error: FailFn
) -> None:
    default = render().get("ConfigMap", "parley-bot")["data"]
    assert [key for key in default if key.startswith("BUDGET_")] == ["BUDGET_WARN_PERCENT"]
    assert "BOT_ADMIN_USER_IDS" not in default
    budgeted = render(values=["dev", "budgets"])
    expected = {
        "BUDGET_TOKENS_PER_DAY": "200000",
        "BUDGET_USD_PER_MONTH": "1.5",
        "BUDGET_EXEMPT_USER_IDS": "1001,1002",
        "BUDGET_WARN_PERCENT": "80",
    }
    for name in ("parley-bot", "parley-api"):
        data = budgeted.get("ConfigMap", name)["data"]
        assert {key: value for key, value in data.items() if key.startswith("BUDGET_")} == expected, name
    assert budgeted.get("ConfigMap", "parley-bot")["data"]["BOT_ADMIN_USER_IDS"] == "42"
    assert "BOT_ADMIN_USER_IDS" not in budgeted.get("ConfigMap", "parley-api")["data"]
    assert "minimum" in render_error(sets=["budgets.tokensPerDay=-1"])
    assert "warnPercent" in render_error(sets=["budgets.warnPercent=100"])


def test_model_choices_reach_the_bot_as_one_list(render: RenderFn, render_error: FailFn) -> None:
    assert "LLM_MODEL_CHOICES" not in render().get("ConfigMap", "parley-bot")["data"]
    chosen = render(sets=["bot.llm.modelChoices={anthropic/claude-3.5-haiku,openai/gpt-4o:online}"])
    assert chosen.get("ConfigMap", "parley-bot")["data"]["LLM_MODEL_CHOICES"] == (
        "anthropic/claude-3.5-haiku,openai/gpt-4o:online"
    )
    assert "does not match" in render_error(sets=["bot.llm.modelChoices={a b}"])
