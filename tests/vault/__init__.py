"""Integration tests against a real Vault dev server (Kubernetes auth through the envtest apiserver)."""
