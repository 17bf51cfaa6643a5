"""Pytest plugin: a real etcd + kube-apiserver per test session, so kube code runs for real."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from parley_testing.envtest_tools import EnvtestTools
from parley_testing.kube_pki import SERVICE_CLUSTER_IP_RANGE, KubePki, generate_pki
from parley_testing.waiting import WaitTimeoutError, wait_for

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
KEEP_ENV = "PARLEY_ENVTEST_KEEP"  # set to keep the temp dir (logs, etcd data) after the session
SETPRIV = shutil.which("setpriv")


def free_ports(count: int) -> list[int]:
    """Ask the kernel for `count` distinct unused loopback TCP ports."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last `lines` lines of a log file for error messages."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(content[-lines:])


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file, that dies with the session."""

    name: str
    argv: Sequence[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the process in a new session; with setpriv it also dies if pytest is killed."""
        prefix = [SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*prefix, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        """Return the exit code if the process has already ended."""
        return None if self.proc is None else self.proc.poll()

    def failure(self, what: str) -> str:
        """Build an error message with the exit status and the tail of the log."""
        code = self.exited()
        status = "still running" if code is None else f"exited with code {code}"
        return f"{self.name} {what} ({status}); last lines of {self.log_path}:\n{log_tail(self.log_path)}"

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after a grace period."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)


def wait_until(check: Callable[[], bool], process: ManagedProcess, what: str, timeout: float) -> None:
    """Wait for `check()` (an OSError is "not yet"); fail early with the log if the process dies, or
    with the log at the timeout."""

    def probe() -> bool:
        if process.exited() is not None:
            raise RuntimeError(process.failure(f"died before {what}"))
        return check()

    try:
        wait_for(probe, what, timeout=timeout, retry_on=(OSError,))
    except WaitTimeoutError as exc:
        raise RuntimeError(process.failure(str(exc))) from None


def http_ok(host: str, port: int, path: str, context: ssl.SSLContext | None = None) -> bool:
    """GET `path` and report whether it answered 200."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(host, port, timeout=2)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=2, context=context)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


@dataclass
class KubeControlPlane:
    """Handle on the running control plane: server URL, kubeconfig, CA and client helpers."""

    workdir: Path
    tools: dict[str, Path]
    etcd: ManagedProcess | None = None
    apiserver: ManagedProcess | None = None
    server: str = ""
    etcd_url: str = ""
    kubeconfig: Path = field(default_factory=Path)
    pki: KubePki | None = None

    @property
    def ca_path(self) -> Path:
        """PEM file of the CA that signed the apiserver's serving certificate."""
        assert self.pki is not None
        return self.pki.ca_cert

    def start(self) -> None:
        """Generate PKI, start etcd and kube-apiserver, write a kubeconfig and wait for /readyz."""
        self.pki = generate_pki(self.workdir / "pki")
        client_port, peer_port, apiserver_port = free_ports(3)
        self._start_etcd(client_port, peer_port)
        self._start_apiserver(apiserver_port)
        self._write_kubeconfig()

    def _start_etcd(self, client_port: int, peer_port: int) -> None:
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self.etcd = ManagedProcess(
            "etcd",
            [
                str(self.tools["etcd"]),
                "--name=envtest",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=envtest={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.workdir / "etcd.log",
        )
        self.etcd.start()
        wait_until(
            lambda: http_ok("127.0.0.1", client_port, "/health"),
            self.etcd,
            "healthy",
            START_TIMEOUT,
        )
        self.etcd_url = client_url

    def _start_apiserver(self, port: int) -> None:
        assert self.pki is not None
        self.server = f"https://127.0.0.1:{port}"
        self.apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(self.tools["kube-apiserver"]),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # A loopback advertise address is refused by the lease endpoint reconciler, and
                # nothing in-cluster needs the `kubernetes` Service endpoints (k8s's own
                # integration tests do the same).
                "--endpoint-reconciler-type=none",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={self.pki.serving_cert}",
                f"--tls-private-key-file={self.pki.serving_key}",
                f"--client-ca-file={self.pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={self.pki.sa_public_key}",
                f"--service-account-signing-key-file={self.pki.sa_private_key}",
                f"--api-audiences={SA_ISSUER}",
                # No kube-controller-manager runs, so nothing creates the `default` ServiceAccount
                # that this admission plugin would demand of every Pod (envtest does the same).
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
            self.workdir / "kube-apiserver.log",
        )
        self.apiserver.start()
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        wait_until(
            lambda: http_ok("127.0.0.1", port, "/readyz", context),
            self.apiserver,
            "ready (/readyz)",
            START_TIMEOUT,
        )

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "envtest-admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "envtest-admin"}}],
            "current-context": "envtest",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.kubeconfig.chmod(0o600)

    def stop(self) -> None:
        """Stop kube-apiserver before etcd so it does not spin on a vanished backend."""
        for process in (self.apiserver, self.etcd):
            if process is not None:
                process.stop()

    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should talk to this control plane."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBERC": "off",
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the envtest kubectl as cluster admin; raise with stderr on failure when `check`."""
        argv = [
            str(self.tools["kubectl"]),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def api_client(self, token: str | None = None) -> ApiClient:
        """Build a kubernetes ApiClient: cluster admin, or the identity of a bearer `token`."""
        from kubernetes import client  # noqa: PLC0415 - keep plugin import cheap when unused

        assert self.pki is not None
        configuration = client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.pki.ca_cert)
        configuration.verify_ssl = True
        if token is None:
            configuration.cert_file = str(self.pki.admin_cert)
            configuration.key_file = str(self.pki.admin_key)
        else:
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def envtest_tools() -> EnvtestTools:
    """Paths of the envtest binaries (from $PARLEY_TOOLS_DIR/envtest.env or PARLEY_* vars)."""
    return EnvtestTools.discover()


@pytest.fixture(scope="session")
def kube_control_plane(envtest_tools: EnvtestTools) -> Iterator[KubeControlPlane]:
    """A running etcd + kube-apiserver (RBAC, TokenRequest) shared by the whole test session."""
    tools = envtest_tools.require("kube-apiserver", "etcd", "kubectl")
    workdir = Path(tempfile.mkdtemp(prefix="parley-envtest-"))
    plane = KubeControlPlane(workdir=workdir, tools=tools)
    try:
        try:
            plane.start()
        except RuntimeError as exc:
            pytest.fail(f"test control plane did not start: {exc}", pytrace=False)
        yield plane
    finally:
        plane.stop()
        if os.environ.get(KEEP_ENV):
            print(f"\n{KEEP_ENV} is set: kept envtest logs and data in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def kube_api(kube_control_plane: KubeControlPlane) -> Iterator[ApiClient]:
    """A cluster-admin ApiClient for one test, closed afterwards."""
    with kube_control_plane.api_client() as api:
        yield api


@pytest.fixture
def kube_namespace(kube_control_plane: KubeControlPlane, kube_api: ApiClient) -> Iterator[str]:
    """A fresh namespace per test; deleted afterwards (it stays Terminating: no controllers run)."""
    from kubernetes import client  # noqa: PLC0415

    core = client.CoreV1Api(kube_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(name)


@pytest.fixture(scope="session")
def helm_bin(envtest_tools: EnvtestTools) -> Path:
    """Path of the pinned helm binary."""
    return envtest_tools.require("helm")["helm"]


@pytest.fixture(scope="session")
def promtool_bin(envtest_tools: EnvtestTools) -> Path:
    """Path of the pinned promtool binary."""
    return envtest_tools.require("promtool")["promtool"]
