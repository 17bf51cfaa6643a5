"""The probes: liveness with details (/health) and readiness (/ready)."""
