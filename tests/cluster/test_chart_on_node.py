"""The chart on a real node: `helm install`, every pod Ready, the migrations Job, `helm test`, a login
through the API's Service, the operator's password rotation, and the bot answering a Telegram
message — each step asserting what a user or an SRE sees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from tests.doubles.llm import LLMDouble
from tests.doubles.telegram import TelegramDouble
from tests.support.cluster import CHART, HELM_TIMEOUT, NODE_VALUES, REPO, Release, eventually, http_get, ready
from tests.support.envtest_tools import EnvtestTools
from tools.node.node import TestNode

pytestmark = pytest.mark.cluster

RELEASE = "parley"
EXAMPLE_USER = REPO / "manifests" / "examples" / "dashboard-user.yaml"
EXAMPLE_PASSWORD = "change-me-to-a-long-random-password"


def helm_bin(node: TestNode) -> Path:
    return EnvtestTools.discover().require("helm")["helm"]


def postgres_volume(node: TestNode, namespace: str) -> str:
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
    node: TestNode, node_telegram: TelegramDouble, node_llm: LLMDouble
) -> AsyncIterator[Release]:
    """The chart installed with the node's values (bundled PostgreSQL), pointed at the doubles."""
    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    release = Release(node=node, name=RELEASE, namespace=namespace)
    await release.kubectl("create", "namespace", namespace)
    await release.kubectl("apply", "-f", "-", input_text=postgres_volume(node, namespace))
    helm = helm_bin(node)
    install = await release.helm(
        helm,
        "install",
        RELEASE,
        str(CHART),
        "--values",
        str(NODE_VALUES),
        "--set",
        f"bot.telegramApiUrl={node_telegram.url}",
        "--set",
        f"bot.llm.baseUrl={node_llm.url}",
        "--set",
        f"secrets.telegramBotToken={node_telegram.token}",
        "--set",
        f"secrets.llmApiKey={node_llm.api_key}",
        "--wait",
        "--timeout",
        HELM_TIMEOUT,
        check=False,
    )
    if install.returncode != 0:
        pytest.fail(f"helm install failed:\n{install.stderr}\n{await release.diagnostics()}", pytrace=False)
    yield release
    await release.helm(helm, "uninstall", RELEASE, "--wait", check=False)
    await release.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


async def test_every_pod_is_ready_and_the_migrations_job_completed(release: Release) -> None:
    pods = await release.pods()
    running = [pod for pod in pods if pod["status"].get("phase") != "Succeeded"]
    components = {pod["metadata"]["labels"].get("app.kubernetes.io/component") for pod in running}
    assert {"api", "bot", "operator", "postgresql"} <= components, await release.diagnostics()
    assert all(ready(pod) for pod in running), await release.diagnostics()
    job = await release.kubectl_json("get", "job", release.component("migrations"))
    assert job["status"].get("succeeded") == 1, job["status"]
    restarts = {
        pod["metadata"]["name"]: pod["status"]["containerStatuses"][0]["restartCount"] for pod in running
    }
    assert set(restarts.values()) == {0}, restarts


async def test_helm_test_passes(release: Release, node: TestNode) -> None:
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

    await eventually(lambda: accepted(EXAMPLE_PASSWORD), "logged in as the example ApiUser", timeout=90)
    assert await login("not-the-password") == 401

    rotated = "a-rotated-long-password-for-the-analyst"
    secret = yaml.safe_load(EXAMPLE_USER.read_text(encoding="utf-8").split("---")[0])
    secret["stringData"]["password"] = rotated
    await release.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(secret))
    await eventually(lambda: accepted(rotated), "logged in with the rotated password", timeout=90)

    async def old_refused() -> bool:
        return await login(EXAMPLE_PASSWORD) == 401

    await eventually(old_refused, "refusing the old password", timeout=30)


async def test_the_bot_answers_a_telegram_message_in_polling_mode(
    release: Release, node_telegram: TelegramDouble
) -> None:
    _, answer = await node_telegram.ask("hello from the node", user_id=424242, timeout=90)
    assert "echo: hello from the node" in answer.text
