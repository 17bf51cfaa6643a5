"""Proof tests for the envtest control plane and the pinned helm/promtool binaries."""
