"""The node components' configuration files, written fresh by every `make node`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from parley_testing.kube_pki import KubePki
from tools.node.layout import (
    BRIDGE,
    CGROUP_ROOT,
    CLUSTER_DOMAIN,
    CNI_NETWORK,
    COREDNS_HEALTH_PORT,
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    NodeLayout,
)


def _write(path: Path, content: str) -> Path:
    """Replace the file atomically, and only when its content changes: running components watch
    their files (kube-proxy exits on a rewrite, containerd reloads CNI configs mid-write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return path
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(content, encoding="utf-8")
    partial.replace(path)
    return path


def admin_kubeconfig(layout: NodeLayout, pki: KubePki) -> Path:
    """Cluster-admin credentials; the node's components use them too (a test node has one tenant)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": NODE_NAME,
                "cluster": {"server": layout.server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
            }
        ],
        "contexts": [{"name": NODE_NAME, "context": {"cluster": NODE_NAME, "user": "admin"}}],
        "current-context": NODE_NAME,
    }
    path = _write(layout.kubeconfig, yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def containerd_config(layout: NodeLayout) -> Path:
    """containerd with its CRI plugin on a socket of the node's own, runc with cgroupfs (the host
    has cgroup v1 and no systemd), images only from what `make node` imports. OOM score
    adjustments are kept at containerd's own or above: a sandbox may not lower them (the pod
    sandbox's -998 is refused with "Permission denied")."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    content = f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[metrics]
  address = ""

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni_config}"
"""
    return _write(layout.config / "containerd.toml", content)


def cni_config(layout: NodeLayout) -> Path:
    """One bridge for the node's pods; host-local addresses; hairpin so a pod reaches itself through
    its Service. No masquerading: nothing outside the machine is reachable anyway."""
    conflist = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_ipam),
                },
            },
            {"type": "loopback"},
        ],
    }
    return _write(layout.cni_config / "10-parley.conflist", json.dumps(conflist, indent=2))


def kubelet_config(layout: NodeLayout, pki: KubePki) -> Path:
    """The kubelet: cgroup v1 allowed explicitly, client certificates from the node's CA, DNS from
    the node's CoreDNS, no image garbage collection (images are imported, not pulled)."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "podLogsDir": str(layout.pod_logs),
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [NODE_IP],
        "resolvConf": "",
        "failSwapOn": False,
        "podCIDR": POD_CIDR,
        "maxPods": 60,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
    }
    return _write(layout.config / "kubelet.yaml", yaml.safe_dump(config))


def kube_proxy_config(layout: NodeLayout) -> Path:
    """Services by iptables; every Service connection is masqueraded, so a reply always returns
    through the node whichever pod answers; conntrack sysctls are left as the host has them."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "iptables": {"masqueradeAll": True},
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }
    return _write(layout.config / "kube-proxy.yaml", yaml.safe_dump(config))


def corefile(layout: NodeLayout) -> Path:
    """CoreDNS answers the cluster's names on the node address; nothing is forwarded upstream."""
    content = f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{COREDNS_HEALTH_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {layout.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
    return _write(layout.config / "Corefile", content)
