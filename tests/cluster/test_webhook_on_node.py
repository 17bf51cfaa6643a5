"""The chart against an external PostgreSQL with the bot in webhook mode on two replicas: Telegram's
webhook calls reach either replica through the bot's Service, and every user's messages are answered
in order, none twice."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.envtest_tools import EnvtestTools
from parley_testing.waiting import eventually
from tests.bot.support import pending_sql
from tests.support.cluster import KUBE_POLL, Release, ready
from tools.localpg import LocalPostgres, throwaway_postgres
from tools.node.layout import NODE_IP, POD_CIDR
from tools.node.node import LocalNode

pytestmark = pytest.mark.cluster

RELEASE = "parley"
DB_PASSWORD = "an-external-database-password"
WEBHOOK_PATH = "/telegram/webhook"


@pytest.fixture(scope="module")
def external_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL outside the cluster (on this machine, at the node's address), reached by password."""
    with throwaway_postgres(
        "parley-e2e-db-", settings={"listen_addresses": f"127.0.0.1,{NODE_IP}"}
    ) as server:
        with (server.data_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write(f"host all all {POD_CIDR} scram-sha-256\n")
        server.psql(f"ALTER ROLE parley PASSWORD '{DB_PASSWORD}'")
        server.psql("SELECT pg_reload_conf()")
        server.create_database("parley")
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def webhook_release(
    node: LocalNode, node_telegram: TelegramDouble, node_llm: LLMDouble, external_postgres: LocalPostgres
) -> AsyncIterator[Release]:
    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    release = Release(node=node, name=RELEASE, namespace=namespace)
    public = f"https://{release.component('bot')}.{namespace}.example"  # what an ingress would serve
    await release.kubectl("create", "namespace", namespace)
    helm = EnvtestTools.discover().require("helm")["helm"]
    await release.install(
        helm,
        node_telegram,
        node_llm,
        postgresql__enabled="false",
        database__host=NODE_IP,
        database__port=external_postgres.port,
        database__password=DB_PASSWORD,
        bot__mode="webhook",
        bot__replicaCount=2,
        bot__webhook__url=f"{public}{WEBHOOK_PATH}",
        secrets__telegramWebhookSecret=secrets.token_urlsafe(24),
    )
    service = await release.kubectl_json("get", "service", release.component("bot"))
    # Telegram posts to the public URL; here it reaches the bot's Service as an ingress would route it.
    node_telegram.webhook_routes = {public: f"http://{service['spec']['clusterIP']}:8080"}
    yield release
    await release.kubectl("delete", "apiusers", "--all", "--wait=true", "--timeout=60s", check=False)
    await release.helm(helm, "uninstall", RELEASE, "--wait", check=False)
    await release.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


async def test_the_external_database_release_migrated_before_install(
    webhook_release: Release, external_postgres: LocalPostgres
) -> None:
    """With an external database the migration is a pre-install hook: the schema is there, and no
    PostgreSQL runs in the release."""
    pods = await webhook_release.pods()
    components = {pod["metadata"]["labels"].get("app.kubernetes.io/component") for pod in pods}
    assert "postgresql" not in components
    assert external_postgres.psql("SELECT count(*) FROM alembic_version", database="parley") == "1"
    job = await webhook_release.kubectl_json("get", "job", webhook_release.component("migrations"))
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["status"].get("succeeded") == 1
    bots = [pod for pod in pods if pod["metadata"]["labels"].get("app.kubernetes.io/component") == "bot"]
    assert len(bots) == 2
    assert all(ready(pod) for pod in bots), await webhook_release.diagnostics()


async def test_two_webhook_replicas_answer_each_users_messages_in_order_once(
    webhook_release: Release,
    node_telegram: TelegramDouble,
    node_llm: LLMDouble,
    external_postgres: LocalPostgres,
) -> None:
    await eventually(
        lambda: node_telegram.webhook_url != "", "the webhook registered", timeout=60, interval=KUBE_POLL
    )
    users = [610001, 610002, 610003, 610004]  # 12 calls: both replicas take some
    count = 3
    started = time.time()
    node_llm.latency = 2.5  # each answer still pending when the user's next message arrives

    async def converse(user_id: int) -> None:
        for index in range(count):
            update = node_telegram.text_update(f"message {index} of {user_id}", user_id=user_id)
            status = await node_telegram.deliver_webhook(update)
            assert status == 200, status
            await asyncio.sleep(2.0)  # apart by more than BOT_COALESCE_SECONDS: separate turns

    try:
        await asyncio.gather(*(converse(user) for user in users))
        for user in users:
            await node_telegram.wait_for_messages(user, count, timeout=120)

        async def nothing_pending() -> bool:
            count = await asyncio.to_thread(external_postgres.psql, pending_sql(users), database="parley")
            return count == "0"

        # A duplicate would come from the other replica taking over work still pending; none is left.
        await eventually(nothing_pending, "nothing pending for the users", timeout=60, interval=KUBE_POLL)
    finally:
        node_llm.latency = 0.0
    for user in users:
        texts = [message.text for message in node_telegram.messages_to(user)]
        assert texts == [f"echo: message {index} of {user}" for index in range(count)], texts
    received = [
        await _metric(pod, "bot_webhook_last_received_timestamp_seconds")
        for pod in await webhook_release.pods("app.kubernetes.io/component=bot")
    ]
    assert len(received) == 2
    assert min(received) >= started, "both replicas took webhook calls"


async def _metric(pod: dict[str, Any], name: str) -> float:
    """One unlabelled sample of a pod's /metrics, read at its pod address."""
    url = f"http://{pod['status']['podIP']}:8080/metrics"
    response = await asyncio.to_thread(httpx.get, url, timeout=5)
    for line in response.text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in {url}")
