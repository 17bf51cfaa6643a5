"""The node's programs: the pinned builds of `make envtest` and Debian's container runtime packages."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tools.node.daemons import NodeError

# Logical name -> variable in the envtest.env file that tools/envtest/install.sh writes.
BUILT = {
    "etcd": "PARLEY_ETCD",
    "kube-apiserver": "PARLEY_KUBE_APISERVER",
    "kubectl": "PARLEY_KUBECTL",
    "kubelet": "PARLEY_KUBELET",
    "kube-controller-manager": "PARLEY_KUBE_CONTROLLER_MANAGER",
    "kube-scheduler": "PARLEY_KUBE_SCHEDULER",
    "kube-proxy": "PARLEY_KUBE_PROXY",
    "coredns": "PARLEY_COREDNS",
    "pause": "PARLEY_PAUSE",
}
# Logical name -> Debian package that provides it.
PACKAGED = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "iptables-restore": "iptables",
    "conntrack": "conntrack",
    "ip": "iproute2",
}
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback")


def _env_file() -> Path:
    tools = os.environ.get("PARLEY_TOOLS_DIR") or str(Path.home() / ".cache" / "parley" / "tools")
    return Path(tools) / "envtest.env"


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def find_binaries() -> dict[str, Path]:
    """Every program the node needs, or one error naming all that are missing and how to get them."""
    values = _read_env_file(_env_file())
    found: dict[str, Path] = {}
    missing_built: list[str] = []
    missing_packages: set[str] = set()
    for name, var in BUILT.items():
        value = os.environ.get(var) or values.get(var)
        if value and Path(value).is_file():
            found[name] = Path(value)
        else:
            missing_built.append(name)
    for name, package in PACKAGED.items():
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path:
            found[name] = Path(path)
        else:
            missing_packages.add(package)
    if not all((CNI_BIN_DIR / plugin).is_file() for plugin in CNI_PLUGINS):
        missing_packages.add("containernetworking-plugins")
    problems = []
    if missing_built:
        problems.append(f"not built: {', '.join(missing_built)} (run `make envtest`)")
    if missing_packages:
        problems.append(f"not installed: apt-get install {' '.join(sorted(missing_packages))}")
    if problems:
        raise NodeError("the test node cannot start; " + "; ".join(problems))
    return found
