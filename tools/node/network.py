"""The node's host networking: its own address, forwarding for pods, and cleaning up afterwards."""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from pathlib import Path

from tools.node.daemons import NodeError
from tools.node.layout import BRIDGE, NODE_INTERFACE, NODE_IP

# Kernel settings pods need: routing between the bridge and the node address, and bridged pod
# traffic passing through iptables so Service addresses are translated both ways.
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}
# Chains the kubelet creates (kube-proxy's go with `kube-proxy --cleanup`; the bridge plugin without
# masquerading creates none).
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-IPTABLES-HINT")


COMMAND_TIMEOUT = 60.0


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure (or a hang) is a NodeError quoting its stderr."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise NodeError(f"`{' '.join(argv)}` did not finish in {COMMAND_TIMEOUT:.0f}s") from exc
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}")
    return result


def set_up(run_dir: Path) -> None:
    """Give the node its address (on the loopback interface: sandboxes often lack the dummy
    module), and set the kernel settings, remembering the host's values for `tear_down`."""
    if f"{NODE_IP}/32" not in run("ip", "-4", "addr", "show", NODE_INTERFACE).stdout:
        run("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_INTERFACE)
    saved = run_dir / "sysctls.json"
    previous = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    for key, value in SYSCTLS.items():
        path = Path("/proc/sys") / key
        if not path.exists():
            raise NodeError(f"{path} is missing: load the br_netfilter kernel module (modprobe br_netfilter)")
        previous.setdefault(key, path.read_text(encoding="utf-8").strip())
        path.write_text(value, encoding="utf-8")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(previous), encoding="utf-8")


def tear_down(run_dir: Path, started: float) -> None:
    """Remove the node's address and bridge, the pod network namespaces it left, the kubelet's
    iptables chains, and put the kernel settings back."""
    run("ip", "addr", "delete", f"{NODE_IP}/32", "dev", NODE_INTERFACE, check=False)
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        run("ip", "link", "delete", BRIDGE, check=False)
    _remove_empty_pod_namespaces(started)
    _remove_kubelet_chains()
    saved = run_dir / "sysctls.json"
    if saved.exists():
        for key, value in json.loads(saved.read_text(encoding="utf-8")).items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / key).write_text(value, encoding="utf-8")


def _remove_empty_pod_namespaces(started: float) -> None:
    """containerd names pod network namespaces cni-…; remove those made since the node started that
    no process uses any more (another runtime's are older or in use)."""
    for namespace in Path("/run/netns").glob("cni-*"):
        with contextlib.suppress(OSError):
            if namespace.stat().st_mtime < started:
                continue
        if not run("ip", "netns", "pids", namespace.name, check=False).stdout.strip():
            run("ip", "netns", "delete", namespace.name, check=False)


def _remove_kubelet_chains() -> None:
    """The kubelet's own chains (kube-proxy removes its own with --cleanup): the rules that jump to
    them, then the chains; one rule at a time, so nothing else in the tables is rewritten."""
    for table in ("filter", "nat", "mangle"):
        saved = run("iptables-save", "-t", table, check=False).stdout.splitlines()
        for line in saved:
            if line.startswith("-A ") and any(f"-j {chain}" in line for chain in KUBELET_CHAINS):
                run("iptables", "-t", table, "-D", *shlex.split(line)[1:], check=False)
        for line in saved:
            chain = line[1:].split()[0] if line.startswith(":") else ""
            if chain in KUBELET_CHAINS:
                run("iptables", "-t", table, "-F", chain, check=False)
                run("iptables", "-t", table, "-X", chain, check=False)
