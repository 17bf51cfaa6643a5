"""The Grafana dashboard and the alerts use only metric names the services' code registers."""

from __future__ import annotations

import json
import re

import pytest

from tests.chart.support import CHART, MONITORING, RenderFn
from tests.support.metric_names import exported_metrics

SUFFIXES = ("_bucket", "_count", "_sum", "_created")

# Not registered by Parley's code, but exported to the same Prometheus:
EXTERNAL = {
    "up",  # Prometheus, per scrape target
    "process_start_time_seconds",  # prometheus_client's process collector (bot and operator registries)
    "pg_up",  # the postgres_exporter sidecar of the chart's PostgreSQL
    "kube_deployment_status_replicas_available",  # kube-state-metrics (kube-prometheus-stack)
}
# The predecessor's metric names (docs/metrics.md), which the dashboard must show.
PREDECESSOR = {
    "llm_request_duration_seconds",
    "llm_requests_total",
    "llm_errors_total",
    "llm_fallback_used_total",
    "telegram_messages_received_total",
    "telegram_messages_sent_total",
    "database_query_duration_seconds",
    "database_connection_pool_size",
    "database_connection_pool_available",
    "stats_api_requests_total",
    "http_requests_total",
    "http_request_duration_seconds",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def base_name(name: str) -> str:
    """A histogram series name without its _bucket/_count/_sum suffix."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def used_in(expressions: list[str]) -> set[str]:
    """Metric names selected in PromQL expressions (recording rules `parley:*` excluded)."""
    names = set()
    for expr in expressions:
        names |= set(SELECTOR.findall(expr)) | set(LABEL_VALUES.findall(expr))
    return {n for n in names if not n.startswith("parley:")}


def unknown(used: set[str], exported: set[str]) -> set[str]:
    """Used names that nobody exports."""
    return {n for n in used if n not in exported and base_name(n) not in exported and n not in EXTERNAL}


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard (panels and variables)."""
    dashboard = json.loads((CHART / "files" / "dashboards" / "parley.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_code_registers_the_predecessors_metrics() -> None:
    """Sanity of the scan itself: the predecessor's metric names are found in the code."""
    assert exported_metrics() >= PREDECESSOR
    assert "parley_operator_reconciles_total" in exported_metrics()


def test_dashboard_uses_only_exported_metrics() -> None:
    """Every metric the dashboard queries is registered by the services (or is a known external one)."""
    used = used_in(dashboard_expressions())
    assert used, "no metric found in the dashboard"
    assert unknown(used, exported_metrics()) == set()
    assert {base_name(n) for n in used} >= PREDECESSOR, PREDECESSOR - {base_name(n) for n in used}


def test_the_scan_catches_an_unknown_name() -> None:
    """A misspelled metric is reported."""
    assert unknown(used_in(['rate(llm_request_total{job="x"}[5m])']), exported_metrics()) == {
        "llm_request_total"
    }


@pytest.mark.kube
def test_alerts_use_only_exported_metrics(render: RenderFn) -> None:
    """Every metric the PrometheusRule selects is registered by the services (or is a known external one)."""
    rule = render(api_versions=[MONITORING]).get("PrometheusRule", "parley")
    expressions = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    used = used_in(expressions)
    assert unknown(used, exported_metrics()) == set()
    assert {"http_requests_total", "llm_errors_total", "parley_operator_reconciles_total"} <= used
