"""Where the test node keeps its files, and the fixed addresses it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from parley_testing.kube_pki import SERVICE_CLUSTER_IP_RANGE

NODE_NAME = "parley-node"
# The node's address is an extra address of the loopback interface, so it is the same on every
# machine whatever the host's network; pods reach it through their bridge's gateway.
NODE_INTERFACE = "lo"
NODE_IP = os.environ.get("PARLEY_NODE_IP", "10.255.0.1")
BRIDGE = "parley-cni0"
CNI_NETWORK = "parley"
# The kubelet's cgroupRoot: the node's pods live under it, apart from any pods the host itself runs.
CGROUP_ROOT = "/parley-node"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = SERVICE_CLUSTER_IP_RANGE
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 16443
ETCD_CLIENT_PORT = 12379
ETCD_PEER_PORT = 12380
COREDNS_HEALTH_PORT = 10253
PAUSE_IMAGE = "localhost/parley-pause:1"
CONTAINERD_NAMESPACE = "k8s.io"  # the namespace the CRI plugin keeps Kubernetes' images in


@dataclass(frozen=True)
class NodeLayout:
    """Every path of one test node, under one per-user directory."""

    base: Path

    @classmethod
    def default(cls) -> NodeLayout:
        """`$PARLEY_NODE_DIR`, else ~/.cache/parley/node."""
        configured = os.environ.get("PARLEY_NODE_DIR")
        return cls(Path(configured) if configured else Path.home() / ".cache" / "parley" / "node")

    @property
    def pki(self) -> Path:
        return self.base / "pki"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def run(self) -> Path:
        """Process id files of the daemons."""
        return self.base / "run"

    @property
    def config(self) -> Path:
        return self.base / "config"

    @property
    def etcd_data(self) -> Path:
        return self.base / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.base / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.base / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def cni_config(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.base / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.base / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pod-logs"

    @property
    def volumes(self) -> Path:
        """hostPath PersistentVolumes of the node's tests."""
        return self.base / "volumes"

    @property
    def kubeconfig(self) -> Path:
        """Cluster-admin kubeconfig, used by the node's own components and by its users."""
        return self.base / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{APISERVER_PORT}"
