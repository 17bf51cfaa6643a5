"""`make bench-operator`: the ApiUser operator at 200 users on a real kube-apiserver and PostgreSQL.

Measured in one run (its own envtest control plane and PostgreSQL, nothing shared):
- 200 ApiUsers created at once -> time until every one is Ready, and the bcrypt hashes it took;
- a resync of the 200 unchanged users, twice: an operator restart (every ApiUser resumed) and a
  periodic timer pass -> time and bcrypt hashes (goal: none);
- a Secret change -> the row holds the new hash (from then on the Stats API accepts the new
  password, since it reads the row on every request), repeated, p50/p95 (goal: p95 <= 5 s).

bcrypt runs at the production cost (BCRYPT_ROUNDS=12 unless --rounds). Every phase has a deadline;
a phase that runs out is reported as such. Exit status 1 only when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parley_core.models import ApiUser
from parley_core.passwords import hash_password, verify_password
from parley_testing.envtest_tools import EnvtestTools
from parley_testing.kube import KubeControlPlane
from tools.bench.report import Goal, percentiles, write
from tools.localpg import LocalPostgres, PostgresNotFoundError, find_bindir, free_port
from tools.run import migrate

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts" / "parley" / "crds" / "apiuser.yaml"
NAMESPACE = "bench"
GROUP, VERSION, PLURAL = "parley.dev", "v1alpha1", "apiusers"
RECONCILES = "parley_operator_reconciles_total"
HASHES = "parley_operator_password_hashes_total"
DURATION_SUM = "parley_operator_reconcile_duration_seconds_sum"


def say(message: str) -> None:
    """Progress for the person waiting."""
    print(f"[bench-operator] {message}", flush=True)


class CannotRunError(RuntimeError):
    """A prerequisite is missing: no envtest tools, no PostgreSQL."""


def wait(check: Callable[[], bool], deadline: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until true or the monotonic ``deadline``; whether it became true."""
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class Operator:
    """`python -m parley_operator` as a child process, and its metrics."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.metrics_url = f"http://127.0.0.1:{env['OPERATOR_METRICS_PORT']}/metrics"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until /metrics answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "parley_operator"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait(self._up, time.monotonic() + 120, 0.2):
            raise CannotRunError(f"the operator did not start; see {self.log_path}")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise CannotRunError(f"the operator exited {self.process.returncode}; see {self.log_path}")
        try:
            return httpx.get(self.metrics_url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in httpx.get(self.metrics_url, timeout=5).text.splitlines():
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name == name and all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def control_plane(workdir: Path) -> Iterator[KubeControlPlane]:
    """A fresh etcd + kube-apiserver with the ApiUser CRD installed."""
    tools = EnvtestTools.discover().paths
    missing = [name for name in ("kube-apiserver", "etcd", "kubectl") if name not in tools]
    if missing:
        raise CannotRunError(f"envtest tools missing ({', '.join(missing)}): run `make envtest`")
    workdir.mkdir(parents=True, exist_ok=True)
    plane = KubeControlPlane(workdir=workdir, tools=tools)
    try:
        plane.start()
        plane.kubectl("apply", "-f", str(CRD))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/apiusers.parley.dev")
        plane.kubectl("create", "namespace", NAMESPACE)
        yield plane
    finally:
        plane.stop()


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL server."""
    try:
        bindir = find_bindir()
    except PostgresNotFoundError as exc:
        raise CannotRunError(str(exc)) from None
    server = LocalPostgres(
        data_dir=workdir / "data",
        run_dir=workdir / "run",
        port=free_port(),
        bindir=bindir,
        settings={"fsync": "off", "synchronous_commit": "off", "max_connections": "100"},
    )
    try:
        server.start()
        yield server
    finally:
        server.stop(mode="immediate")


def secret_body(name: str, password: str) -> dict[str, Any]:
    """A Secret holding ``password``, labelled for the operator's default (label) mode."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"parley.dev/apiuser-password": "true"}},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


def apiuser_body(index: int) -> dict[str, Any]:
    """ApiUser number ``index``."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ApiUser",
        "metadata": {"name": f"user-{index:04d}"},
        "spec": {
            "username": f"user-{index:04d}",
            "passwordSecretRef": {"name": f"pw-{index:04d}", "key": "password"},
        },
    }


def ready_count(custom: Any) -> int:
    """ApiUsers whose Ready is True for their current generation."""
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    count = 0
    for item in items:
        status = item.get("status") or {}
        ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        if (
            ready
            and ready[0]["status"] == "True"
            and status.get("observedGeneration") == item["metadata"]["generation"]
        ):
            count += 1
    return count


async def row_hash(engine: AsyncEngine, username: str) -> str | None:
    """The stored hash of ``username``."""
    async with engine.connect() as conn:
        result = await conn.execute(select(ApiUser.password_hash).where(ApiUser.username == username))
        return result.scalar_one_or_none()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All phases; returns the results document's parts."""
    from kubernetes import client  # noqa: PLC0415

    base = Path(tempfile.mkdtemp(prefix="parley-bench-operator-"))
    base.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    try:
        with control_plane(base / "kube") as plane, postgres(base / "pg") as pg:
            pg.create_database("parley")
            url = pg.url("parley")
            asyncio.run(migrate(url))
            env = {
                **plane.env(),
                "DATABASE_URL": url,
                "BCRYPT_ROUNDS": str(args.rounds),
                "OPERATOR_NAMESPACES": NAMESPACE,
                "OPERATOR_HEALTH_PORT": str(free_port()),
                "OPERATOR_METRICS_PORT": str(free_port()),
                "OPERATOR_RESYNC_SECONDS": str(args.resync),
                "LOG_FORMAT": "json",
            }
            for name in ("VAULT_ADDR", "VAULT_TOKEN", "KUBERNETES_SERVICE_HOST"):
                env.pop(name, None)
            with plane.api_client() as api:
                return _phases(args, api=api, client=client, env=env, url=url, base=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _phases(
    args: argparse.Namespace, *, api: Any, client: Any, env: dict[str, str], url: str, base: Path
) -> dict[str, Any]:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    users = args.users
    passwords = {i: f"bench-password-{i:04d}-initial" for i in range(users)}

    def create_secret(i: int) -> None:
        core.create_namespaced_secret(NAMESPACE, secret_body(f"pw-{i:04d}", passwords[i]))

    def create_apiuser(i: int) -> None:
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, apiuser_body(i))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create_secret, range(users)))
    results: dict[str, Any] = {}

    started = time.perf_counter()
    hash_password("a-password-to-time-bcrypt", rounds=args.rounds)
    bcrypt_ms = round((time.perf_counter() - started) * 1000, 1)

    operator = Operator(env, base / "operator-1.log")
    operator.start()
    try:
        say(f"creating {users} ApiUsers at once ...")
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create_apiuser, range(users)))
        created = time.monotonic() - started
        all_ready = wait(lambda: ready_count(custom) == users, started + args.phase_timeout, 0.2)
        results["create"] = {
            "users": users,
            "bcrypt_ms_per_hash_here": bcrypt_ms,
            "all_ready": all_ready,
            "ready": ready_count(custom),
            "seconds_to_all_ready": round(time.monotonic() - started, 2),
            "seconds_to_create_objects": round(created, 2),
            "bcrypt_calls": int(operator.metric(HASHES)),
        }
        say(f"create: {results['create']}")

        say("a timer resync pass over the unchanged users ...")
        checks_before = operator.metric(RECONCILES, trigger="timer")
        seconds_before = operator.metric(DURATION_SUM, trigger="timer")
        hashes_before = operator.metric(HASHES)
        timer_started = time.monotonic()
        done = wait(
            lambda: operator.metric(RECONCILES, trigger="timer") - checks_before >= users,
            timer_started + args.resync + args.phase_timeout,
            0.2,
        )
        checks = operator.metric(RECONCILES, trigger="timer") - checks_before
        seconds = operator.metric(DURATION_SUM, trigger="timer") - seconds_before
        results["resync_timer"] = {
            "completed": done,
            "checks": int(checks),
            "bcrypt_calls": int(operator.metric(HASHES) - hashes_before),
            "check_seconds_sum": round(seconds, 3),
            "check_ms_mean": round(1000 * seconds / checks, 2) if checks else None,
        }
        say(f"timer resync: {results['resync_timer']}")
    finally:
        operator.stop()

    say("restarting the operator: every ApiUser resumes ...")
    operator = Operator(env, base / "operator-2.log")
    started = time.monotonic()
    operator.start()
    up = time.monotonic() - started
    try:
        done = wait(
            lambda: operator.metric(RECONCILES, trigger="resume") >= users,
            started + args.phase_timeout,
            0.1,
        )
        results["resync_restart"] = {
            "completed": done,
            "seconds_from_start_to_all_checked": round(time.monotonic() - started, 2),
            "seconds_of_process_start": round(up, 2),
            "unchanged": int(operator.metric(RECONCILES, trigger="resume", result="unchanged")),
            "bcrypt_calls": int(operator.metric(HASHES)),
        }
        say(f"restart resync: {results['resync_restart']}")

        say(f"{args.rotations} Secret rotations ...")
        results["rotation"] = asyncio.run(_rotations(args, core, url, passwords))
        say(f"rotation: {results['rotation']}")
    finally:
        operator.stop()
    return results


async def _rotations(
    args: argparse.Namespace, core: Any, url: str, passwords: dict[int, str]
) -> dict[str, Any]:
    engine = create_async_engine(url, pool_size=2)
    samples: list[float] = []
    timeouts = 0
    try:
        for n in range(args.rotations):
            index = n % len(passwords)
            username = f"user-{index:04d}"
            old = await row_hash(engine, username)
            new_password = f"bench-password-{index:04d}-rotated-{n}"
            body = {"data": {"password": base64.b64encode(new_password.encode()).decode()}}
            started = time.monotonic()
            await asyncio.to_thread(core.patch_namespaced_secret, f"pw-{index:04d}", NAMESPACE, body)
            deadline = started + 30
            current = old
            while current == old and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                current = await row_hash(engine, username)
            if current == old or current is None or not verify_password(new_password, current):
                timeouts += 1
                continue
            samples.append((time.monotonic() - started) * 1000)
            passwords[index] = new_password
    finally:
        await engine.dispose()
    summary: dict[str, Any] = percentiles(samples) if samples else {"n": 0}
    summary["timeouts"] = timeouts
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run, write tools/bench/results/operator.json, print the goals."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost (production default 12)")
    parser.add_argument("--rotations", type=int, default=30)
    parser.add_argument("--resync", type=float, default=20.0, help="OPERATOR_RESYNC_SECONDS during the run")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="deadline of each phase (s)")
    args = parser.parse_args(argv)
    try:
        results = run(args)
    except CannotRunError as exc:
        print(f"bench-operator: cannot run: {exc}", file=sys.stderr)
        return 1
    rotation = results["rotation"]
    goals = [
        Goal("create_bcrypt_calls_per_user", results["create"]["bcrypt_calls"] / args.users, "<=", 1),
        Goal("resync_timer_bcrypt_calls", results["resync_timer"]["bcrypt_calls"], "<=", 0),
        Goal("resync_restart_bcrypt_calls", results["resync_restart"]["bcrypt_calls"], "<=", 0),
        Goal("secret_change_to_login_p95_s", rotation.get("p95", float("inf")) / 1000, "<=", 5),
    ]
    path = write(
        "operator",
        params={
            "users": args.users,
            "bcrypt_rounds": args.rounds,
            "rotations": args.rotations,
            "resync_seconds": args.resync,
            "hash_concurrency": 2,
        },
        results=results,
        goals=goals,
        postgres=_postgres_version(),
    )
    for goal in goals:
        say(goal.verdict())
    say(f"wrote {path}")
    return 0


def _postgres_version() -> str | None:
    try:
        out = subprocess.run(
            [str(find_bindir() / "postgres"), "--version"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError, PostgresNotFoundError):
        return None
    found = re.search(r"\d+\.\d+", out.stdout)
    return found.group(0) if found else None


if __name__ == "__main__":
    sys.exit(main())
