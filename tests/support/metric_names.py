"""Which metric names the services' code registers (read from the source, so nothing needs to run)."""

from __future__ import annotations

import ast
from pathlib import Path

import prometheus_fastapi_instrumentator

REPO = Path(__file__).resolve().parents[2]
SERVICE_SOURCES = ("api/parley_api", "bot/parley_bot", "operator/parley_operator", "core/parley_core")
METRIC_CLASSES = {"Counter", "Histogram", "Gauge", "Summary", "GaugeMetricFamily", "CounterMetricFamily"}


def registered_in(path: Path) -> set[str]:
    """Names passed as the first argument (or name=) of Counter/Histogram/Gauge/... in a source file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        if called not in METRIC_CLASSES:
            continue
        args = [node.args[0]] if node.args else []
        args += [k.value for k in node.keywords if k.arg == "name"]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                name = arg.value
                if called == "Counter" and not name.endswith("_total"):
                    name += "_total"  # prometheus_client exposes counters with _total
                names.add(name)
    return names


def exported_metrics() -> set[str]:
    """Every metric name the services register, plus prometheus-fastapi-instrumentator's http_* ones."""
    names: set[str] = set()
    for source in SERVICE_SOURCES:
        for path in (REPO / source).rglob("*.py"):
            names |= registered_in(path)
    instrumentator = Path(prometheus_fastapi_instrumentator.__file__).parent / "metrics.py"
    names |= {n for n in registered_in(instrumentator) if n.startswith("http_")}
    return names
