"""The node's host networking: its own address, forwarding for pods, and cleaning up afterwards."""

from __future__ import annotations

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
# Chains the kubelet, kube-proxy and the CNI plugins create; removed by `make node-down`.
CHAIN_PREFIXES = ("KUBE-", "CNI-")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure is a NodeError quoting its stderr."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}")
    return result


def set_up() -> None:
    """Give the node its address (on the loopback interface: sandboxes often lack the dummy
    module), and set the kernel settings."""
    if f"{NODE_IP}/32" not in run("ip", "-4", "addr", "show", NODE_INTERFACE).stdout:
        run("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_INTERFACE)
    for key, value in SYSCTLS.items():
        path = Path("/proc/sys") / key
        if not path.exists():
            raise NodeError(f"{path} is missing: load the br_netfilter kernel module (modprobe br_netfilter)")
        path.write_text(value, encoding="utf-8")


def tear_down() -> None:
    """Remove the node's address and bridge, the pods' leftover network namespaces and the node's
    iptables chains."""
    run("ip", "addr", "delete", f"{NODE_IP}/32", "dev", NODE_INTERFACE, check=False)
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        run("ip", "link", "delete", BRIDGE, check=False)
    _remove_empty_pod_namespaces()
    _remove_chains()


def _remove_empty_pod_namespaces() -> None:
    """containerd names pod network namespaces cni-…; remove those no process uses any more."""
    for namespace in Path("/run/netns").glob("cni-*"):
        if not run("ip", "netns", "pids", namespace.name, check=False).stdout.strip():
            run("ip", "netns", "delete", namespace.name, check=False)


def _remove_chains() -> None:
    """Drop every KUBE-*/CNI-* chain and every rule that jumps to one, in one atomic restore."""
    saved = run("iptables-save").stdout
    kept = [line for line in saved.splitlines() if not any(prefix in line for prefix in CHAIN_PREFIXES)]
    if len(kept) != len(saved.splitlines()):
        subprocess.run(["iptables-restore"], input="\n".join(kept) + "\n", text=True, check=True)
