"""A single-node Kubernetes cluster on this machine (`make node`), for the end-to-end chart tests.

The envtest control plane (etcd, kube-apiserver) plus kube-controller-manager, kube-scheduler,
a kubelet on containerd + runc, bridge CNI, kube-proxy and CoreDNS: every binary built from the
pinned module versions (`make envtest`) or taken from Debian's packages, so no container registry
and no Docker daemon are needed. See docs/development.md, "The test node".
"""
