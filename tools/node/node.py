"""Bringing the test node up and down: the order of the components and what each waits for."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from parley_testing.kube_pki import SERVICE_CLUSTER_IP_RANGE, KubePki, generate_pki, pki_paths, pki_valid_for
from tools.node import configs, images, network
from tools.node.binaries import find_binaries
from tools.node.daemons import Daemon, NodeError
from tools.node.layout import (
    APISERVER_PORT,
    CGROUP_ROOT,
    CNI_NETWORK,
    CONTAINERD_NAMESPACE,
    COREDNS_HEALTH_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    NodeLayout,
)

START_TIMEOUT = 120.0
# Stopped in this order: what runs pods first, the control plane last.
STOP_ORDER = (
    "kubelet",
    "kube-proxy",
    "coredns",
    "kube-scheduler",
    "kube-controller-manager",
    "containerd",
    "kube-apiserver",
    "etcd",
)
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

Progress = Callable[[str], None]


def _http_ok(port: int, path: str, context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> bool:
    conn: http.client.HTTPConnection = (
        http.client.HTTPConnection(host, port, timeout=2)
        if context is None
        else http.client.HTTPSConnection(host, port, timeout=2, context=context)
    )
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


def _unverified() -> ssl.SSLContext:
    """The controller manager's and scheduler's /healthz use self-signed certificates of their own."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class LocalNode:
    """One single-node cluster on this machine."""

    def __init__(self, layout: NodeLayout | None = None, progress: Progress = print) -> None:
        self.layout = layout or NodeLayout.default()
        self.progress = progress
        self._binaries: dict[str, Path] | None = None

    @property
    def binaries(self) -> dict[str, Path]:
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    @property
    def pki(self) -> KubePki:
        return pki_paths(self.layout.pki)

    def _daemon(self, name: str, argv: list[str], *inputs: Path) -> Daemon:
        return Daemon(name, argv, self.layout.run, self.layout.logs, inputs=(self.pki.ca_cert, *inputs))

    # ---- state -----------------------------------------------------------------------------

    def daemons(self) -> dict[str, Daemon]:
        """Every component with its command line (the same for `up`, `status` and `down`)."""
        bins, layout, pki = self.binaries, self.layout, self.pki
        kubeconfig = str(layout.kubeconfig)
        delegated = [f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}"]
        return {
            "etcd": self._daemon(
                "etcd",
                [
                    str(bins["etcd"]),
                    f"--name={NODE_NAME}",
                    f"--data-dir={layout.etcd_data}",
                    f"--listen-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}",
                    f"--advertise-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}",
                    f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
                    f"--initial-cluster={NODE_NAME}=http://127.0.0.1:{ETCD_PEER_PORT}",
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
            ),
            "kube-apiserver": self._daemon(
                "kube-apiserver",
                [
                    str(bins["kube-apiserver"]),
                    f"--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}",
                    f"--bind-address={NODE_IP}",
                    f"--advertise-address={NODE_IP}",
                    f"--secure-port={APISERVER_PORT}",
                    f"--cert-dir={layout.base / 'apiserver-certs'}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--client-ca-file={pki.ca_cert}",
                    f"--kubelet-client-certificate={pki.admin_cert}",
                    f"--kubelet-client-key={pki.admin_key}",
                    "--kubelet-preferred-address-types=InternalIP",  # the node's name is not in any DNS
                    f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                    "--authorization-mode=Node,RBAC",
                    f"--service-account-issuer={SA_ISSUER}",
                    f"--service-account-key-file={pki.sa_public_key}",
                    f"--service-account-signing-key-file={pki.sa_private_key}",
                    f"--api-audiences={SA_ISSUER}",
                    "--allow-privileged=true",
                    "--profiling=false",
                    "--v=1",
                ],
                pki.serving_cert,
            ),
            "containerd": self._daemon(
                "containerd",
                [str(bins["containerd"]), f"--config={layout.config / 'containerd.toml'}"],
                layout.config / "containerd.toml",
            ),
            "kube-controller-manager": self._daemon(
                "kube-controller-manager",
                [
                    str(bins["kube-controller-manager"]),
                    f"--kubeconfig={kubeconfig}",
                    *delegated,
                    "--bind-address=127.0.0.1",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={pki.sa_private_key}",
                    f"--root-ca-file={pki.ca_cert}",
                    "--use-service-account-credentials=false",
                    f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                    f"--cluster-cidr={POD_CIDR}",
                    "--v=1",
                ],
            ),
            "kube-scheduler": self._daemon(
                "kube-scheduler",
                [
                    str(bins["kube-scheduler"]),
                    f"--kubeconfig={kubeconfig}",
                    *delegated,
                    "--bind-address=127.0.0.1",
                    "--leader-elect=false",
                    "--v=1",
                ],
            ),
            "kubelet": self._daemon(
                "kubelet",
                [
                    str(bins["kubelet"]),
                    f"--config={layout.config / 'kubelet.yaml'}",
                    f"--kubeconfig={kubeconfig}",
                    f"--root-dir={layout.kubelet_root}",
                    f"--cert-dir={layout.kubelet_root / 'pki'}",
                    f"--hostname-override={NODE_NAME}",
                    f"--node-ip={NODE_IP}",
                    "--v=1",
                ],
                layout.config / "kubelet.yaml",
            ),
            "kube-proxy": self._daemon(
                "kube-proxy",
                [str(bins["kube-proxy"]), f"--config={layout.config / 'kube-proxy.yaml'}", "--v=1"],
                layout.config / "kube-proxy.yaml",
            ),
            "coredns": self._daemon(
                "coredns",
                [str(bins["coredns"]), "-conf", str(layout.config / "Corefile")],
                layout.config / "Corefile",
            ),
        }

    def status(self) -> dict[str, bool]:
        """Which components run."""
        return {name: daemon.running() for name, daemon in self.daemons().items()}

    # ---- up --------------------------------------------------------------------------------

    def up(self) -> None:
        """Start whatever is not running yet and wait until the node is Ready; idempotent."""
        if os.geteuid() != 0:
            raise NodeError("the test node needs root (network interfaces, iptables, cgroups, mounts)")
        started = time.monotonic()
        layout = self.layout
        self._write_configs()
        daemons = self.daemons()  # fails early, naming every missing program
        network.set_up(layout.run)
        marker = layout.run / "started"  # down removes only the pod namespaces made since
        if not marker.exists():
            marker.write_text(f"{time.time()}\n", encoding="utf-8")
        for controller in Path("/sys/fs/cgroup").iterdir():
            if controller.is_dir() and not controller.is_symlink() and controller.name != "unified":
                with contextlib.suppress(OSError):
                    (controller / CGROUP_ROOT.strip("/")).mkdir(exist_ok=True)
        steps: list[tuple[str, Callable[[], bool]]] = [
            ("etcd", lambda: _http_ok(ETCD_CLIENT_PORT, "/health")),
            (
                "kube-apiserver",
                lambda: _http_ok(APISERVER_PORT, "/readyz", self._admin_context(), host=NODE_IP),
            ),
            ("containerd", self._containerd_ready),
            ("kube-controller-manager", lambda: _http_ok(10257, "/healthz", _unverified())),
            ("kube-scheduler", lambda: _http_ok(10259, "/healthz", _unverified())),
            ("kubelet", lambda: _http_ok(10248, "/healthz")),
            ("kube-proxy", lambda: _http_ok(10256, "/healthz")),
            ("coredns", lambda: _http_ok(COREDNS_HEALTH_PORT, "/health")),
        ]
        for name, ready in steps:
            daemon = daemons[name]
            if daemon.outdated():
                daemon.stop()
            was_running = daemon.running()
            daemon.start()
            daemon.wait_until(ready, "healthy", START_TIMEOUT)
            self.progress(f"node: {name:<24} {'running' if was_running else 'started'}")
            if name == "containerd":
                self._import_images()
        daemons["kubelet"].wait_until(self._node_ready, "Ready (node condition)", START_TIMEOUT)
        daemons["kube-controller-manager"].wait_until(
            self._default_service_account, "done creating the default ServiceAccount", START_TIMEOUT
        )
        self.progress(
            f"node: {NODE_NAME} Ready in {time.monotonic() - started:.0f}s; "
            f"export KUBECONFIG={layout.kubeconfig}"
        )

    def _write_configs(self) -> None:
        layout = self.layout
        if not pki_valid_for(layout.pki, NODE_IP):
            generate_pki(layout.pki, extra_ips=(NODE_IP,))
        configs.admin_kubeconfig(layout, self.pki)
        configs.containerd_config(layout)
        configs.cni_config(layout)
        configs.kubelet_config(layout, self.pki)
        configs.kube_proxy_config(layout)
        configs.corefile(layout)
        layout.volumes.mkdir(parents=True, exist_ok=True)

    def _admin_context(self) -> ssl.SSLContext:
        pki = self.pki
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return context

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """containerd's own client, on the node's socket and Kubernetes' namespace."""
        return network.run(
            shutil.which("ctr") or "ctr",
            f"--address={self.layout.containerd_socket}",
            f"--namespace={CONTAINERD_NAMESPACE}",
            *args,
            check=check,
        )

    def _containerd_ready(self) -> bool:
        return self.layout.containerd_socket.exists() and self.ctr("version", check=False).returncode == 0

    def _import_images(self) -> None:
        pause = images.write_pause_archive(self.binaries["pause"], self.layout.base / "pause.tar")
        archives = [pause, *sorted(images.images_dir().glob("*.tar"))]
        for name in images.import_images(self.layout, self.binaries["ctr"], archives):
            self.progress(f"node: imported {name}")

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return network.run(
            str(self.binaries["kubectl"]), f"--kubeconfig={self.layout.kubeconfig}", *args, check=check
        )

    def _node_ready(self) -> bool:
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status}'
        result = self.kubectl("get", "node", NODE_NAME, "-o", f"jsonpath={jsonpath}", check=False)
        return result.stdout.strip() == "True"

    def _default_service_account(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0

    # ---- down ------------------------------------------------------------------------------

    def down(self, purge_images: bool = False) -> None:
        """Stop every component and every pod, and leave no mount, address, bridge or chain behind.
        Works from the pid files alone, so a node whose programs were removed can still be stopped."""
        if os.geteuid() != 0:
            raise NodeError("stopping the test node needs root, like starting it")
        layout = self.layout
        stoppable = {name: Daemon(name, (), layout.run, layout.logs) for name in STOP_ORDER}
        stoppable["kubelet"].stop()  # first, or it restarts the containers killed next
        if stoppable["containerd"].running():
            self._kill_containers()
        for name in STOP_ORDER:
            stoppable[name].stop()
        kube_proxy = shutil.which("kube-proxy") or os.environ.get("PARLEY_KUBE_PROXY")
        with contextlib.suppress(NodeError):
            kube_proxy = kube_proxy or str(find_binaries().get("kube-proxy", ""))
        if kube_proxy:
            network.run(kube_proxy, "--cleanup", check=False)
        self._kill_leftover_shims()
        self._kill_pod_processes()
        self._unmount_all()
        started_file = layout.run / "started"
        started = float(started_file.read_text(encoding="utf-8")) if started_file.exists() else time.time()
        network.tear_down(layout.run, started)
        self._remove_host_leftovers()
        for path in (
            layout.etcd_data,
            layout.kubelet_root,
            layout.cni_ipam,
            layout.volumes,
            layout.run,
            layout.pki,
        ):
            shutil.rmtree(path, ignore_errors=True)
        if purge_images:
            shutil.rmtree(layout.base, ignore_errors=True)
        self.progress("node: down (nothing of it runs)")

    def _remove_host_leftovers(self) -> None:
        """What the kubelet and the CNI library keep outside the node's directory."""
        base = str(self.layout.base)
        for link in Path("/var/log/containers").glob("*.log"):
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(base):
                    link.unlink()
        for result in Path("/var/lib/cni/results").glob(f"{CNI_NETWORK}-*"):
            result.unlink(missing_ok=True)

    def _kill_containers(self) -> None:
        """Stop every pod's processes through containerd, then drop the containers."""
        tasks = self.ctr("tasks", "list", "--quiet", check=False).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "RUNNING" in self.ctr("tasks", "list", check=False).stdout:
            time.sleep(0.5)
        for task in tasks:
            self.ctr("tasks", "delete", "--force", task, check=False)
        containers = self.ctr("containers", "list", "--quiet", check=False).stdout.split()
        if containers:
            self.ctr("containers", "delete", *containers, check=False)

    def _kill_leftover_shims(self) -> None:
        """A containerd shim outlives containerd by design; ours name the node's socket."""
        marker = os.fsencode(str(self.layout.containerd_socket))
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if b"containerd-shim" in cmdline and marker in cmdline:
                    os.kill(int(proc.name), signal.SIGKILL)

    def _kill_pod_processes(self) -> None:
        """Whatever still runs in the node's pod cgroups (a container whose shim died first) is killed,
        then the empty cgroups are removed."""
        for _ in range(50):
            pids = [pid for pid in _processes() if _in_pod_cgroup(pid)]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        for controller in Path("/sys/fs/cgroup").iterdir():
            root = controller / CGROUP_ROOT.strip("/")
            if root.is_dir():
                for directory in sorted(root.rglob("*"), key=lambda path: len(path.parts), reverse=True):
                    if directory.is_dir():
                        with contextlib.suppress(OSError):
                            directory.rmdir()
                with contextlib.suppress(OSError):
                    root.rmdir()

    def _unmount_all(self) -> None:
        """Unmount whatever the kubelet and containerd mounted under the node's directory."""
        base = str(self.layout.base) + "/"
        mounts = [
            line.split()[1].encode().decode("unicode_escape")  # /proc/mounts writes a space as \\040
            for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
        ]
        for mount in sorted((m for m in mounts if m.startswith(base)), key=len, reverse=True):
            network.run("umount", "-l", mount, check=False)


def _processes() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _in_pod_cgroup(pid: int) -> bool:
    """The node's pods run under its own cgroup root (the kubelet's cgroupRoot), never a host's pods."""
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8")
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and any(
        line.split(":", 2)[-1].startswith(CGROUP_ROOT + "/") for line in cgroups.splitlines()
    )
