"""The end-to-end suite's fixtures: the images, the test node they run on, and the Telegram and LLM
doubles the pods talk to (listening on the node's address, which pods reach)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.support.cluster import REPO, unavailable
from tools.node.daemons import NodeError
from tools.node.layout import NODE_IP
from tools.node.node import LocalNode

MONITORING_CRDS = REPO / "tests" / "chart" / "crds"
KEEP_ENV = "PARLEY_NODE_KEEP"  # set to leave the node running after the session (make node-down ends it)


@pytest.fixture(scope="session")
def node() -> Iterator[LocalNode]:
    """The images built (cached), the node up with them imported, and down again afterwards unless
    it was already up (a developer's `make node`) or PARLEY_NODE_KEEP is set."""
    if os.geteuid() != 0:
        unavailable("it needs root (network interfaces, iptables, cgroups, mounts)")
    test_node = LocalNode(progress=print)
    try:
        was_up = any(test_node.status().values())  # a developer's node, even a partly running one, stays
    except NodeError as exc:
        unavailable(str(exc))
    images = subprocess.run(
        [str(REPO / "tools" / "images" / "build.sh"), "--with-test-fixtures"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if images.returncode != 0:
        pytest.fail(f"make images failed:\n{images.stdout[-3000:]}\n{images.stderr[-3000:]}", pytrace=False)
    try:
        test_node.up()
        # prometheus-operator's CRDs, so the chart creates its ServiceMonitors and PrometheusRule.
        for crd in sorted(MONITORING_CRDS.glob("*.yaml")):
            test_node.kubectl("apply", "--server-side", "-f", str(crd))
    except NodeError as exc:
        if not was_up:
            test_node.down()  # nothing half-started is left behind
        pytest.fail(f"the test node did not come up: {exc}", pytrace=False)
    yield test_node
    if not was_up and not os.environ.get(KEEP_ENV):
        test_node.down()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node_telegram(node: LocalNode) -> AsyncIterator[TelegramDouble]:
    """A Telegram double per module (one bot token, one release) on the node's address."""
    telegram = TelegramDouble()
    await telegram.start(host=NODE_IP)
    yield telegram
    await telegram.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node_llm(node: LocalNode) -> AsyncIterator[LLMDouble]:
    """The LLM double on the node's address; it echoes each question."""
    llm = LLMDouble()
    await llm.start(host=NODE_IP)
    yield llm
    await llm.close()
