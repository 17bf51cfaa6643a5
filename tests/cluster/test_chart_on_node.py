"""The chart on a real node: `helm install`, every pod Ready, the migrations Job, `helm test`, a login
through the API's Service, the operator's password rotation, and the bot answering a Telegram
message — each step asserting what a user or an SRE sees."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from parley_testing.doubles.llm import LLMDouble, error
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.envtest_tools import EnvtestTools
from parley_testing.waiting import eventually
from tests.support.cluster import (
    CHART,
    HELM_TIMEOUT,
    KUBE_POLL,
    REPO,
    Release,
    http_get,
    ready,
)
from tests.support.prometheus import Prometheus, documented_metrics, running_prometheus
from tools.node.node import LocalNode

pytestmark = pytest.mark.cluster

RELEASE = "parley"
EXAMPLE_USER = REPO / "manifests" / "examples" / "dashboard-user.yaml"
EXAMPLE_PASSWORD = "change-me-to-a-long-random-password"
ROTATED_PASSWORD = "a-rotated-long-password-for-the-analyst"
PRIMARY_MODEL = "openai/gpt-4o-mini"  # the chart's bot.llm.model
METRICS_DOC = REPO / "docs" / "metrics.md"
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def helm_bin(node: LocalNode) -> Path:
    return EnvtestTools.discover().require("helm")["helm"]


def postgres_volume(node: LocalNode, namespace: str) -> str:
    """A hostPath PersistentVolume bound in advance to the StatefulSet's claim (the node has no
    dynamic provisioner; a cluster's default StorageClass would do this)."""
    path = node.layout.volumes / namespace
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-postgresql"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(path), "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": f"data-{RELEASE}-postgresql-0"},
        },
    }
    return yaml.safe_dump(volume)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def release(
    node: LocalNode, node_telegram: TelegramDouble, node_llm: LLMDouble
) -> AsyncIterator[Release]:
    """The chart installed with the node's values (bundled PostgreSQL), pointed at the doubles."""
    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    release = Release(node=node, name=RELEASE, namespace=namespace)
    await release.kubectl("create", "namespace", namespace)
    await release.kubectl("apply", "-f", "-", input_text=postgres_volume(node, namespace))
    helm = helm_bin(node)
    await release.install(helm, node_telegram, node_llm)
    yield release
    await teardown(release, helm)


async def teardown(release: Release, helm: Path) -> None:
    """What an operator of the cluster does (the last test has uninstalled already when all passed):
    ApiUsers first, while the operator still clears their finalizers, then the release, the namespace
    and the test's volume."""
    await release.kubectl("delete", "apiusers", "--all", "--wait=true", "--timeout=60s", check=False)
    await release.helm(helm, "uninstall", RELEASE, "--wait", check=False)
    await release.kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)
    await release.kubectl(
        "delete", "persistentvolume", f"{release.namespace}-postgresql", "--wait=false", check=False
    )


def owned_by_a_job(pod: dict[str, Any]) -> bool:
    return any(owner.get("kind") == "Job" for owner in pod["metadata"].get("ownerReferences", []))


async def test_every_pod_is_ready_and_the_migrations_job_completed(release: Release) -> None:
    async def serving() -> list[dict[str, Any]] | None:
        # The migrations Job's pod is judged by the Job below, not by readiness.
        pods = [pod for pod in await release.pods() if not owned_by_a_job(pod)]
        return pods if pods and all(ready(pod) for pod in pods) else None

    try:
        running = await eventually(serving, "every pod Ready", timeout=60, interval=KUBE_POLL)
    except AssertionError:
        pytest.fail(f"not every pod became Ready:\n{await release.diagnostics()}", pytrace=False)
    components = {pod["metadata"]["labels"].get("app.kubernetes.io/component") for pod in running}
    assert {"api", "bot", "operator", "postgresql"} <= components, await release.diagnostics()

    async def migrated() -> dict[str, object] | None:
        job = await release.kubectl_json("get", "job", release.component("migrations"))
        status: dict[str, object] = job["status"]
        return status if status.get("succeeded") == 1 else None

    status = await eventually(migrated, "the migrations Job complete", timeout=60, interval=KUBE_POLL)
    assert status.get("failed") is None, status
    restarts = {
        pod["metadata"]["name"]: pod["status"]["containerStatuses"][0]["restartCount"] for pod in running
    }
    assert set(restarts.values()) == {0}, restarts


async def test_helm_test_passes(release: Release, node: LocalNode) -> None:
    result = await release.helm(helm_bin(node), "test", RELEASE, "--logs", check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "Phase:          Succeeded" in result.stdout


async def test_an_apiuser_logs_in_through_the_service_and_a_rotation_refuses_the_old_password(
    release: Release,
) -> None:
    await release.kubectl("apply", "-f", str(EXAMPLE_USER))
    stats = f"{await release.service_url('api')}/api/v1/stats?period=day"

    async def login(password: str) -> int:
        return (await asyncio.to_thread(http_get, stats, user="analyst", password=password)).status

    async def accepted(password: str) -> bool:
        return await login(password) == 200

    await eventually(
        lambda: accepted(EXAMPLE_PASSWORD), "logged in as the example ApiUser", timeout=90, interval=KUBE_POLL
    )
    assert await login("not-the-password") == 401

    rotated = ROTATED_PASSWORD
    secret = yaml.safe_load(EXAMPLE_USER.read_text(encoding="utf-8").split("---")[0])
    secret["stringData"]["password"] = rotated
    await release.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(secret))
    await eventually(
        lambda: accepted(rotated), "logged in with the rotated password", timeout=90, interval=KUBE_POLL
    )

    async def old_refused() -> bool:
        return await login(EXAMPLE_PASSWORD) == 401

    await eventually(old_refused, "refusing the old password", timeout=30, interval=KUBE_POLL)


async def test_the_bot_answers_a_telegram_message_in_polling_mode(
    release: Release, node_telegram: TelegramDouble
) -> None:
    _, answer = await node_telegram.ask("hello from the node", user_id=424242, timeout=90)
    assert "echo: hello from the node" in answer.text


@pytest.fixture(scope="module")
def prometheus(release: Release, node: LocalNode) -> Iterator[Prometheus]:
    """A real Prometheus scraping the release as its ServiceMonitors say, with its PrometheusRule."""
    binary = EnvtestTools.discover().require("prometheus")["prometheus"]
    kubectl = [
        str(node.binaries["kubectl"]),
        f"--kubeconfig={node.layout.kubeconfig}",
        "-n",
        release.namespace,
    ]
    monitors = json.loads(
        subprocess.run(
            [*kubectl, "get", "servicemonitors", "-o", "json"], capture_output=True, check=True
        ).stdout
    )
    rules = json.loads(
        subprocess.run(
            [*kubectl, "get", "prometheusrules", "-o", "json"], capture_output=True, check=True
        ).stdout
    )
    with running_prometheus(binary, monitors["items"], rules["items"], node.layout.kubeconfig) as server:
        yield server


async def test_prometheus_scrapes_every_service_through_its_servicemonitor(
    release: Release, prometheus: Prometheus
) -> None:
    jobs = {
        release.component("api"): 2,
        release.component("bot"): 1,
        release.component("operator-metrics"): 1,
    }

    async def all_up() -> dict[str, int] | None:
        targets = await asyncio.to_thread(prometheus.targets)
        up = Counter(t["labels"]["job"] for t in targets if t["health"] == "up")
        return dict(up) if all(up[job] == count for job, count in jobs.items()) else None

    await eventually(all_up, "every ServiceMonitor target up", timeout=90, interval=KUBE_POLL)


async def test_every_documented_metric_is_exported(
    release: Release, prometheus: Prometheus, node_telegram: TelegramDouble, node_llm: LLMDouble
) -> None:
    """After what an SRE's week brings — an answer by the fallback model after the primary failed,
    Telegram's flood control once, its draft previews failing, an ApiUser removed, a wrong password —
    Prometheus holds every metric docs/metrics.md lists."""
    node_llm.script(PRIMARY_MODEL, *[error(500)] * 3)
    node_telegram.flood("sendMessage", retry_after=1)
    node_telegram.fail("sendMessageDraft", 500, "Internal Server Error", times=3)
    node_llm.chunk_delay = 0.3  # a streamed answer long enough for draft previews
    question = "answered by the fallback after a slow stream of words: one two three four five six seven"
    try:
        _, answer = await node_telegram.ask(question, user_id=737373, timeout=90)
    finally:
        node_llm.chunk_delay = 0.0
    assert f"echo: {question}" in answer.text
    await release.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(throwaway_apiuser()))
    await eventually(
        lambda: _apiuser_synced(release, "throwaway"),
        "the throwaway ApiUser Synced",
        timeout=60,
        interval=KUBE_POLL,
    )
    await release.kubectl("delete", "apiuser", "throwaway", "--wait=true", "--timeout=60s")
    stats = f"{await release.service_url('api')}/api/v1/stats?period=day"
    for password in (ROTATED_PASSWORD, "a-wrong-password"):
        await asyncio.to_thread(http_get, stats, user="analyst", password=password)
    documented = documented_metrics(METRICS_DOC)

    async def none_missing() -> bool:
        present = await asyncio.to_thread(prometheus.metric_names)
        return all(present & {name, *(name + s for s in SERIES_SUFFIXES)} for name in documented)

    try:
        await eventually(
            none_missing, "every documented metric in Prometheus", timeout=60, interval=KUBE_POLL
        )
    except AssertionError:
        present = await asyncio.to_thread(prometheus.metric_names)
        absent = sorted(n for n in documented if not present & {n, *(n + s for s in SERIES_SUFFIXES)})
        pytest.fail(f"documented but never scraped: {absent}")


async def test_deleting_the_bot_pod_during_an_answer_still_answers_it_once(
    release: Release, node: LocalNode, node_telegram: TelegramDouble, node_llm: LLMDouble
) -> None:
    """kubectl delete pod while the model is writing: the old pod drains its turn (or the new one
    resumes it); the user gets the answer exactly once."""
    user_id = 515151
    (bot,) = await release.pods("app.kubernetes.io/component=bot")
    node_llm.latency = 6.0
    try:
        asked = len(node_llm.requests)
        node_telegram.send_text("answer me through a restart", user_id=user_id)
        await eventually(
            lambda: len(node_llm.requests) > asked,
            "the question at the model",
            timeout=60,
            interval=KUBE_POLL,
        )
        await release.kubectl("delete", "pod", bot["metadata"]["name"], "--wait=false")
        answers = await node_telegram.wait_for_messages(user_id, 1, timeout=120)
    finally:
        node_llm.latency = 0.0
    assert "echo: answer me through a restart" in answers[0].text

    async def replaced() -> bool:
        pods = await release.pods("app.kubernetes.io/component=bot")
        return [p["metadata"]["name"] for p in pods if ready(p)] not in ([], [bot["metadata"]["name"]])

    await eventually(replaced, "a new bot pod ready", timeout=120, interval=KUBE_POLL)
    _, after = await node_telegram.ask("still there?", user_id=user_id, timeout=60)
    assert "echo: still there?" in after.text
    texts = [m.text for m in node_telegram.messages_to(user_id)]
    assert sum("answer me through a restart" in text for text in texts) == 1, texts


async def test_a_database_outage_unreadies_the_api_fires_the_alert_and_restarts_nothing(
    release: Release, prometheus: Prometheus
) -> None:
    """PostgreSQL gone: the API pods leave the Service's endpoints (readiness), ParleyDatabaseDown fires
    (after its 2 minutes), no liveness probe restarts anything in those minutes, and everything is back
    once the database is."""
    before = await restart_counts(release)
    api_endpoints = await endpoint_addresses(release, "api")
    assert len(api_endpoints) == 2
    await release.kubectl("scale", "statefulset", release.component("postgresql"), "--replicas=0")
    try:
        await eventually(
            lambda: _endpoints_empty(release, "api"),
            "the API out of its Service's endpoints",
            timeout=60,
            interval=KUBE_POLL,
        )
        await asyncio.sleep(60)
        assert await restart_counts(release) == before, await release.diagnostics()

        async def firing() -> list[dict[str, Any]] | None:
            alerts = await asyncio.to_thread(prometheus.alerts)
            found = [
                a
                for a in alerts
                if a["labels"]["alertname"] == "ParleyDatabaseDown" and a["state"] == "firing"
            ]
            return found or None

        alerts = await eventually(firing, "ParleyDatabaseDown firing", timeout=180, interval=KUBE_POLL)
        assert {a["labels"]["job"] for a in alerts} <= {release.component("api"), release.component("bot")}
        assert await restart_counts(release) == before, await release.diagnostics()
    finally:
        await release.kubectl("scale", "statefulset", release.component("postgresql"), "--replicas=1")
    await eventually(
        lambda: _endpoint_count(release, "api", 2),
        "both API pods back in the endpoints",
        timeout=180,
        interval=KUBE_POLL,
    )
    assert await restart_counts(release) == before, await release.diagnostics()


async def test_deleting_the_postgresql_pod_is_recovered_from(release: Release) -> None:
    """The StatefulSet brings a new PostgreSQL pod on the same volume; the services reconnect."""
    before = await restart_counts(release)
    name = f"{release.component('postgresql')}-0"
    old_uid = (await release.kubectl_json("get", "pod", name))["metadata"]["uid"]
    await release.kubectl("delete", "pod", name, "--wait=true")

    async def replaced() -> bool:
        pods = await release.pods("app.kubernetes.io/component=postgresql")
        return any(pod["metadata"]["uid"] != old_uid and ready(pod) for pod in pods)

    await eventually(replaced, "a new PostgreSQL pod ready", timeout=180, interval=KUBE_POLL)
    await eventually(
        lambda: _endpoint_count(release, "api", 2), "the API ready again", timeout=180, interval=KUBE_POLL
    )
    stats = f"{await release.service_url('api')}/api/v1/stats?period=day"

    async def logged_in() -> bool:
        answer = await asyncio.to_thread(http_get, stats, user="analyst", password=ROTATED_PASSWORD)
        return answer.status == 200

    await eventually(logged_in, "a login after PostgreSQL's restart", timeout=60, interval=KUBE_POLL)
    assert await restart_counts(release) == before, await release.diagnostics()


async def test_helm_upgrade_to_a_new_image_tag_fails_no_request(release: Release, node: LocalNode) -> None:
    """A client polls /api/v1/stats every 200 ms through the Service while the API rolls to a new tag."""
    node.ctr("images", "tag", "--force", "localhost/parley-api:dev", "localhost/parley-api:dev-next")
    stats = f"{await release.service_url('api')}/api/v1/stats?period=day"
    results: list[str] = []
    done = asyncio.Event()

    async def poll() -> None:
        while not done.is_set():
            try:
                answer = await asyncio.to_thread(
                    http_get, stats, user="analyst", password=ROTATED_PASSWORD, timeout=5
                )
                results.append(str(answer.status))
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)
            await asyncio.sleep(0.2)

    poller = asyncio.create_task(poll())
    try:
        await asyncio.sleep(2)
        await release.helm(
            helm_bin(node),
            "upgrade",
            RELEASE,
            str(CHART),
            "--reuse-values",
            "--set",
            "api.image.tag=dev-next",
            "--wait",
            "--timeout",
            HELM_TIMEOUT,
        )
        await asyncio.sleep(2)
    finally:
        done.set()
        await poller
    images = {
        pod["spec"]["containers"][0]["image"]
        for pod in await release.pods("app.kubernetes.io/component=api")
        if pod["metadata"].get("deletionTimestamp") is None
    }
    assert images == {"localhost/parley-api:dev-next"}
    hooks = list(yaml.safe_load_all((await release.helm(helm_bin(node), "get", "hooks", RELEASE)).stdout))
    migration = next(h for h in hooks if h and h["kind"] == "Job")
    assert migration["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"  # it ran: the upgrade passed
    failed = [result for result in results if result != "200"]
    assert len(results) > 20
    assert failed == [], f"{len(failed)} of {len(results)} requests failed: {sorted(set(failed))}"


async def test_helm_uninstall_keeps_the_postgresql_volume(release: Release, node: LocalNode) -> None:
    """ApiUsers go first, while the operator still runs to clear their finalizers (as documented),
    then the release; the database's claim and data stay."""
    await release.kubectl("delete", "apiusers", "--all", "--wait=true", "--timeout=60s")
    await release.helm(helm_bin(node), "uninstall", RELEASE, "--wait")
    claims = await release.kubectl_json("get", "pvc")
    assert [c["metadata"]["name"] for c in claims["items"]] == [f"data-{RELEASE}-postgresql-0"]
    assert any((node.layout.volumes / release.namespace).rglob("PG_VERSION")), "the data directory is gone"


def throwaway_apiuser() -> list[dict[str, Any]]:
    """A second dashboard account and its labelled password Secret."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "throwaway-password", "labels": {"parley.dev/apiuser-password": "true"}},
        "stringData": {"password": "a-throwaway-long-password"},
    }
    user = {
        "apiVersion": "parley.dev/v1alpha1",
        "kind": "ApiUser",
        "metadata": {"name": "throwaway"},
        "spec": {
            "username": "throwaway",
            "passwordSecretRef": {"name": "throwaway-password", "key": "password"},
        },
    }
    return [secret, user]


async def _apiuser_synced(release: Release, name: str) -> bool:
    user = await release.kubectl_json("get", "apiuser", name)
    conditions = user.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def restart_counts(release: Release) -> dict[str, int]:
    """Container restarts of the running Parley pods: the database's own pod is left out (the tests stop
    it), and so is a pod already being deleted (an earlier test's deleted bot pod may still be draining)."""
    return {
        f"{pod['metadata']['name']}/{status['name']}": status["restartCount"]
        for pod in await release.pods()
        if pod["status"].get("phase") == "Running"
        and "postgresql" not in pod["metadata"]["name"]
        and not pod["metadata"].get("deletionTimestamp")
        for status in pod["status"].get("containerStatuses", [])
    }


async def endpoint_addresses(release: Release, component: str) -> list[str]:
    slices = await release.kubectl_json(
        "get", "endpointslices", "--selector", f"kubernetes.io/service-name={release.component(component)}"
    )
    return [
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    ]


async def _endpoints_empty(release: Release, component: str) -> bool:
    return await endpoint_addresses(release, component) == []


async def _endpoint_count(release: Release, component: str, count: int) -> bool:
    return len(await endpoint_addresses(release, component)) == count
