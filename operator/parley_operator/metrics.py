"""Prometheus metrics of the operator, served on their own port (OPERATOR_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "parley_operator_reconciles_total",
    "ApiUser syncs by trigger (create, update, resume, timer) and result (changed, unchanged or the "
    "Ready condition's reason).",
    ["trigger", "result"],
)
RECONCILE_SECONDS = Histogram(
    "parley_operator_reconcile_duration_seconds",
    "Duration of one ApiUser sync, password read and bcrypt included.",
    ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MANAGED_USERS = Gauge(
    "parley_operator_managed_users",
    "ApiUser resources this operator manages, by whether their Ready condition is True.",
    ["ready"],
)
PASSWORD_HASHES = Counter(
    "parley_operator_password_hashes_total",
    "bcrypt hashes computed; stays flat while sources are unchanged (syncs compare fingerprints).",
)
ROW_DELETIONS = Counter(
    "parley_operator_row_deletions_total",
    "Finalizer runs by result: deleted (the row was this ApiUser's), not_owned, failed (retried).",
    ["result"],
)


def set_managed(ready: dict[str, bool]) -> None:
    """Publish how many managed ApiUsers are Ready and not."""
    true_count = sum(1 for value in ready.values() if value)
    MANAGED_USERS.labels(ready="true").set(true_count)
    MANAGED_USERS.labels(ready="false").set(len(ready) - true_count)


def serve(host: str, port: int) -> None:
    """Start the /metrics HTTP server in a daemon thread."""
    start_http_server(port, addr=host)
