"""The built images, run for real in a private containerd the way the chart runs them: as their numeric
user, with a read-only root filesystem and an empty /tmp, on the host's network (so they reach this
session's PostgreSQL, control plane and doubles on loopback).

- each product image: uid/gid 10001, a read-only root, no build tools or build mounts left behind;
- api: serves /health and /ready on a real, migrated PostgreSQL; its Alembic migrates an empty database;
- bot: without its secrets it exits 2 naming them; with them it answers a Telegram message (doubles);
- operator: with an invalid setting it exits 2 naming it; on the envtest control plane it makes an
  ApiUser Ready (without any kube-apiserver it would only retry, so that is not a test of its own);
- the PostgreSQL test fixture: the chart's env, args and volumes; password login over TCP; SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley_core import schema
from parley_testing.bot_process import bot_environment
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from parley_testing.kube import KubeControlPlane
from parley_testing.waiting import eventually, wait_for
from tests.bot.constants import TEST_USER_ID
from tests.images.support import SERVICES
from tests.support.containerd import Container, Containerd, Mount
from tests.support.operator import CRD, apiuser, secret
from tools.localpg import free_port

pytestmark = pytest.mark.images

TMP = Mount.tmpfs("/tmp")  # the chart mounts an emptyDir at /tmp in every pod
START_TIMEOUT = 90.0  # two shared cores; the services import a lot before they listen
PARLEY_UID = "uid=10001(parley) gid=10001(parley) groups=10001(parley)"
POSTGRES_DATA = "/var/lib/postgresql/data"


def wait_until_ok(url: str, container: Container, timeout: float = START_TIMEOUT) -> httpx.Response:
    """The first 200 from ``url``; fails with the container's output if it exits or never answers."""

    def answered() -> httpx.Response | None:
        running(container, f"{url} answered")
        response = httpx.get(url, timeout=2)
        return response if response.status_code == 200 else None

    return wait_for(
        answered,
        f"{url} to answer 200",
        timeout=timeout,
        interval=0.3,
        retry_on=(httpx.TransportError,),
        describe=lambda: container.logs()[-4000:],
    )


def running(container: Container, before: str) -> None:
    """Fail at once, with its output, if ``container`` has exited."""
    code = container.exit_code()
    if code is not None:
        pytest.fail(f"{container.id} exited {code} before {before}:\n{container.logs()[-4000:]}")


def no_traceback(output: str) -> None:
    """A start-up refusal is a message for a person, not a stack trace."""
    assert "Traceback" not in output, output


# ---- every product image ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_the_unprivileged_parley_user(
    containerd: Containerd, images: dict[str, str], service: str
) -> None:
    config = containerd.image_config(images[service])["config"]
    assert config["User"] == "10001:10001"

    result = containerd.run(images[service], "id", mounts=(TMP,))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == PARLEY_UID


@pytest.mark.parametrize("service", SERVICES)
def test_only_tmp_is_writable(containerd: Containerd, images: dict[str, str], service: str) -> None:
    probe = "touch /app/probe || echo app-refused; touch /tmp/probe && echo tmp-written"

    result = containerd.run(images[service], "sh", "-c", probe, mounts=(TMP,))

    assert "Read-only file system" in result.stderr
    assert result.stdout.split() == ["app-refused", "tmp-written"]


@pytest.mark.parametrize("service", SERVICES)
def test_no_build_tools_or_build_mounts_are_left(
    containerd: Containerd, images: dict[str, str], service: str
) -> None:
    # uv and compilers stay in the build stage; the builder's CA and uv configuration were bind mounts.
    probe = "for t in uv pip gcc cc; do command -v $t; done; ls -d /etc/uv /root/.config 2>/dev/null; true"

    result = containerd.run(images[service], "sh", "-c", probe, mounts=(TMP,))

    assert result.stdout.split() == []


# ---- api ----------------------------------------------------------------------------------------------


def test_api_serves_health_and_ready_on_postgresql(
    containerd: Containerd, images: dict[str, str], database_url: str
) -> None:
    port = free_port()
    env = {"DATABASE_URL": database_url, "API_HOST": "127.0.0.1", "API_PORT": str(port)}
    container = containerd.run_detached(images["api"], env=env, mounts=(TMP,))
    try:
        health = wait_until_ok(f"http://127.0.0.1:{port}/health", container)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
    finally:
        code = container.stop()

    assert health.json()["status"] == "ok"
    assert health.json()["database"]["status"] == "up"
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert code == 0, container.logs()[-4000:]


async def test_alembic_in_the_api_image_migrates_an_empty_database(
    containerd: Containerd, images: dict[str, str], empty_database_url: str
) -> None:
    command = ("alembic", "-c", "/app/alembic.ini", "upgrade", "head")

    result = await asyncio.to_thread(
        containerd.run, images["api"], *command, env={"DATABASE_URL": empty_database_url}, mounts=(TMP,)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    engine = create_async_engine(empty_database_url)
    try:
        assert await schema.is_at_head(engine)
    finally:
        await engine.dispose()


# ---- bot ----------------------------------------------------------------------------------------------


def test_bot_without_its_secrets_exits_2_naming_them(containerd: Containerd, images: dict[str, str]) -> None:
    result = containerd.run(images["bot"], mounts=(TMP,))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "parley-bot: invalid configuration" in result.stderr
    assert "TELEGRAM_BOT_TOKEN is required" in result.stderr
    assert "LLM_API_KEY is required" in result.stderr
    no_traceback(result.stdout + result.stderr)


async def test_bot_answers_a_telegram_message(
    containerd: Containerd, images: dict[str, str], database_url: str
) -> None:
    telegram, llm = TelegramDouble(), LLMDouble()
    await telegram.start()
    await llm.start()
    port = free_port()
    env = {
        **bot_environment(telegram, llm),
        "DATABASE_URL": database_url,
        "BOT_HOST": "127.0.0.1",
        "BOT_PORT": str(port),
        "STREAM_REPLIES": "off",
        "TELEGRAM_POLLING_TIMEOUT_SECONDS": "1",
    }
    container = containerd.run_detached(images["bot"], env=env, mounts=(TMP,))
    try:
        # Waiting happens in a thread: the doubles answer the bot from this event loop.
        await asyncio.to_thread(wait_until_ok, f"http://127.0.0.1:{port}/health", container)
        _, answer = await telegram.ask("hello from the image", user_id=TEST_USER_ID, timeout=60)
    finally:
        code = await asyncio.to_thread(container.stop)
        await telegram.close()
        await llm.close()

    assert answer.text == "echo: hello from the image"
    assert code == 0, container.logs()[-4000:]


# ---- operator -----------------------------------------------------------------------------------------


def test_operator_with_an_invalid_setting_exits_2_naming_it(
    containerd: Containerd, images: dict[str, str]
) -> None:
    env = {"OPERATOR_SECRET_LABEL_SELECTOR": "tier!=db"}

    result = containerd.run(images["operator"], env=env, mounts=(TMP,))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "parley-operator: invalid configuration" in result.stderr
    assert "OPERATOR_SECRET_LABEL_SELECTOR" in result.stderr
    no_traceback(result.stdout + result.stderr)


def portable_kubeconfig(plane: KubeControlPlane, path: Path) -> Path:
    """The control plane's admin kubeconfig with the certificates inline, readable by uid 10001 only."""
    config: dict[str, Any] = yaml.safe_load(plane.kubeconfig.read_text())
    inline = (("cluster", "certificate-authority"), ("user", "client-certificate"), ("user", "client-key"))
    for section, key in inline:
        for entry in config[f"{section}s"]:
            body = entry[section]
            if key in body:
                body[f"{key}-data"] = base64.b64encode(Path(body.pop(key)).read_bytes()).decode()
    path.write_text(yaml.safe_dump(config))
    os.chown(path, 10001, 10001)
    path.chmod(0o400)
    return path


def apiuser_ready(plane: KubeControlPlane, namespace: str, name: str) -> bool:
    result = plane.kubectl("get", "apiuser", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def usernames(database_url: str) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text("SELECT username FROM api_users"))).scalars())
    finally:
        await engine.dispose()


@pytest.fixture
def apiuser_namespace(
    kube_control_plane: KubeControlPlane, kube_namespace: str
) -> tuple[KubeControlPlane, str]:
    """This test's namespace on the envtest control plane, with the chart's ApiUser CRD established."""
    kube_control_plane.kubectl("apply", "-f", str(CRD))
    kube_control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/apiusers.parley.dev"
    )
    return kube_control_plane, kube_namespace


@pytest.mark.kube
def test_operator_makes_an_apiuser_ready(
    containerd: Containerd,
    images: dict[str, str],
    apiuser_namespace: tuple[KubeControlPlane, str],
    database_url: str,
    tmp_path: Path,
) -> None:
    plane, namespace = apiuser_namespace
    kubeconfig = portable_kubeconfig(plane, tmp_path / "kubeconfig")
    health_port, metrics_port = free_port(), free_port()
    env = {
        "KUBECONFIG": "/etc/parley/kubeconfig",
        "DATABASE_URL": database_url,
        "OPERATOR_NAMESPACES": namespace,
        "OPERATOR_HOST": "127.0.0.1",
        "OPERATOR_HEALTH_PORT": str(health_port),
        "OPERATOR_METRICS_PORT": str(metrics_port),
        "BCRYPT_ROUNDS": "4",
    }
    mounts = (TMP, Mount.bind(kubeconfig, "/etc/parley/kubeconfig", read_only=True))
    manifests = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [secret("dashboard-password", secrets.token_urlsafe(18)), apiuser("dashboard", "dashboard")],
    }
    container = containerd.run_detached(images["operator"], env=env, mounts=mounts)
    try:
        wait_until_ok(f"http://127.0.0.1:{health_port}/healthz", container)
        plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifests))

        def dashboard_ready() -> bool:
            running(container, "the ApiUser became Ready")
            return apiuser_ready(plane, namespace, "dashboard")

        wait_for(
            dashboard_ready,
            "the ApiUser to become Ready",
            timeout=START_TIMEOUT,
            interval=0.5,
            retry_on=(),
            describe=lambda: container.logs()[-4000:],
        )
    finally:
        code = container.stop()

    assert asyncio.run(usernames(database_url)) == ["dashboard"]
    assert code == 0, container.logs()[-4000:]


# ---- the PostgreSQL test fixture ----------------------------------------------------------------------


def chart_volume(path: Path) -> Path:
    """An empty directory as the chart's data volume is: root-owned, group 999 (fsGroup), setgid."""
    path.mkdir()
    os.chown(path, 0, 999)
    path.chmod(0o2775)
    return path


def start_postgres(
    containerd: Containerd, image: str, volume: Path, password: str, port: int
) -> tuple[Container, list[str]]:
    """The image as the chart's StatefulSet runs it (env, args after the entrypoint, three volumes), on
    ``port`` (the host's network is shared); returns the container and the chart's probe command."""
    env = {
        "POSTGRES_USER": "parley",
        "POSTGRES_PASSWORD": password,
        "POSTGRES_DB": "parley",
        "PGDATA": f"{POSTGRES_DATA}/pgdata",
    }
    mounts = (Mount.bind(volume, POSTGRES_DATA), Mount.tmpfs("/var/run/postgresql"), TMP)
    entrypoint = containerd.image_config(image)["config"]["Entrypoint"]
    args = ["-c", "max_connections=42", "-c", f"port={port}"]  # Kubernetes' args replace only CMD
    container = containerd.run_detached(image, *entrypoint, *args, env=env, mounts=mounts)
    probe = ["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-U", "parley", "-d", "parley"]
    return container, probe


async def wait_ready(container: Container, probe: list[str]) -> None:
    """Until the chart's readiness probe (pg_isready, run in the container) passes."""

    async def passed() -> bool:
        running(container, "pg_isready passed")
        return (await asyncio.to_thread(container.exec, *probe)).returncode == 0

    await eventually(
        passed,
        "pg_isready to pass",
        timeout=START_TIMEOUT,
        interval=0.3,
        retry_on=(),
        describe=lambda: container.logs()[-4000:],
    )


async def login(port: int, password: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=port, user="parley", password=password, database="parley", ssl=False
    )


async def test_postgres_fixture_serves_the_chart(
    containerd: Containerd, images: dict[str, str], tmp_path: Path
) -> None:
    volume = chart_volume(tmp_path / "data")
    password, port = secrets.token_urlsafe(18), free_port()
    container, probe = start_postgres(containerd, images["postgres"], volume, password, port)
    try:
        await wait_ready(container, probe)
        conn = await login(port, password)
        try:
            who = await conn.fetchrow(
                "SELECT current_user, current_database(),"
                " current_setting('max_connections'), current_setting('listen_addresses')"
            )
            rules = await conn.fetch("SELECT type, address, auth_method FROM pg_hba_file_rules")
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await login(port, "not-the-password")
        container.kill("SIGTERM")
        code = await asyncio.to_thread(container.wait, 60)
    finally:
        await asyncio.to_thread(container.stop)

    assert tuple(who) == ("parley", "parley", "42", "*")
    assert ("host", "all", "scram-sha-256") in {tuple(rule) for rule in rules}
    assert {rule["auth_method"] for rule in rules if rule["type"] == "host"} == {"scram-sha-256"}
    assert (volume / "pgdata").stat().st_uid == 999
    assert code == 0, container.logs()[-4000:]
    assert "received smart shutdown request" in container.logs()
    assert "database system is shut down" in container.logs()


async def test_postgres_fixture_keeps_its_data_across_restarts(
    containerd: Containerd, images: dict[str, str], tmp_path: Path
) -> None:
    volume = chart_volume(tmp_path / "data")
    password, port = secrets.token_urlsafe(18), free_port()
    for run in range(2):
        container, probe = start_postgres(containerd, images["postgres"], volume, password, port)
        try:
            await wait_ready(container, probe)
            conn = await login(port, password)
            try:
                if run == 0:
                    await conn.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives')")
                kept = await conn.fetchval("SELECT value FROM kept")
            finally:
                await conn.close()
        finally:
            code = await asyncio.to_thread(container.stop)
        assert kept == "survives"
        assert code == 0, container.logs()[-4000:]
    assert "already holds a database; skipping initialization" in container.logs()
