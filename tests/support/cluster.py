"""Driving a Helm release on the test node (tools/node) from async tests.

Every blocking call (helm, kubectl, HTTP to a Service) runs in a thread: the Telegram and LLM
doubles the pods talk to live in the test's event loop and must keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.envtest_tools import in_ci
from tools.node.node import LocalNode

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "parley"
NODE_VALUES = REPO / "tests" / "cluster" / "values-node.yaml"
HELM_TIMEOUT = "6m"
KUBE_POLL = 1.0  # seconds between polls: every probe of the node is a kubectl or HTTP round trip


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI: CI must never pass without having run the cluster suite."""
    if in_ci():
        pytest.fail(f"CI=true and the test node is unavailable: {reason}", pytrace=False)
    pytest.skip(f"the test node is unavailable: {reason}")


async def run(
    *argv: str | Path, timeout: float = 420, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a thread and capture its output."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str


def http_get(
    url: str, *, user: str | None = None, password: str | None = None, timeout: float = 10
) -> HttpAnswer:
    """GET with optional Basic auth (blocking: call it in a thread); an HTTP error is an answer too."""
    auth = (user, password) if user is not None and password is not None else None
    response = httpx.get(url, auth=auth, timeout=timeout)
    return HttpAnswer(response.status_code, response.text)


@dataclass
class Release:
    """One Helm release of the chart in its own namespace on the test node."""

    node: LocalNode
    name: str
    namespace: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.node.layout.kubeconfig), "KUBERC": "off"}

    async def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        argv = [str(self.node.binaries["kubectl"]), "--namespace", self.namespace, *args]
        result = await asyncio.to_thread(
            subprocess.run,
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=self.env,
            input=input_text,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    async def kubectl_json(self, *args: str) -> Any:
        return json.loads(await self.kubectl(*args, "-o", "json"))

    async def helm(self, helm_bin: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = await run(helm_bin, *args, "--namespace", self.namespace, env=self.env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    async def install(
        self, helm_bin: Path, telegram: TelegramDouble, llm: LLMDouble, **values: object
    ) -> None:
        """`helm install --wait` with the node's values, pointed at the doubles, plus `values` (dotted
        names with `__` for `.`); a failure fails the test with what an SRE would look at."""
        sets = {
            "bot.telegramApiUrl": telegram.url,
            "bot.llm.baseUrl": llm.url,
            "secrets.telegramBotToken": telegram.token,
            "secrets.llmApiKey": llm.api_key,
            **{name.replace("__", "."): value for name, value in values.items()},
        }
        args = [arg for name, value in sets.items() for arg in ("--set", f"{name}={value}")]
        result = await self.helm(
            helm_bin,
            "install",
            self.name,
            str(CHART),
            "--values",
            str(NODE_VALUES),
            *args,
            "--wait",
            "--timeout",
            HELM_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"helm install failed:\n{result.stderr}\n{await self.diagnostics()}", pytrace=False)

    def component(self, name: str) -> str:
        """The chart's name for a component's objects (`<release>-<component>` for a release whose
        name contains the chart's)."""
        return f"{self.name}-{name}"

    async def service_url(self, component: str, port_name: str = "http") -> str:
        service = await self.kubectl_json("get", "service", self.component(component))
        port = next(p["port"] for p in service["spec"]["ports"] if p.get("name") == port_name)
        return f"http://{service['spec']['clusterIP']}:{port}"

    async def pods(self, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", "pods"] + (["--selector", selector] if selector else [])
        items: list[dict[str, Any]] = (await self.kubectl_json(*args))["items"]
        return items

    async def diagnostics(self) -> str:
        """What an SRE looks at first when a step fails: pods, events, the tail of each pod's log."""
        objects = await self.kubectl("get", "pods,jobs,pvc", "-o", "wide", check=False)
        parts = [await self.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)]
        for pod in await self.pods():
            name = pod["metadata"]["name"]
            parts.append(
                f"--- {name}\n"
                + await self.kubectl("logs", name, "--all-containers", "--tail=30", check=False)
            )
        # The object table last and whole: it is what a cut-off report must not lose.
        return "\n".join(parts)[-10000:] + "\n--- pods, jobs, claims\n" + objects


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
