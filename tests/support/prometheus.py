"""A real Prometheus (built by `make envtest` from the same module as promtool) scraping the test
node's pods as the chart's ServiceMonitors say, and evaluating the chart's PrometheusRule.

No prometheus-operator runs on the node: `scrape_configs` turns each ServiceMonitor endpoint into the
scrape job prometheus-operator would generate (Kubernetes endpoint discovery in the monitor's namespaces,
kept when the Service's labels match its selector and the port name matches; `job` is the Service's
name), and `rule_groups` takes the PrometheusRule's groups as they are.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from parley_testing.waiting import wait_for

START_TIMEOUT = 60.0
EVALUATION_INTERVAL = "5s"


def _label_name(label: str) -> str:
    """How Kubernetes discovery spells a label in its __meta_* names."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def scrape_configs(service_monitors: list[dict[str, Any]], kubeconfig: Path) -> list[dict[str, Any]]:
    """One scrape job per ServiceMonitor endpoint, with prometheus-operator's semantics."""
    jobs = []
    for monitor in service_monitors:
        meta, spec = monitor["metadata"], monitor["spec"]
        namespaces = spec.get("namespaceSelector", {}).get("matchNames") or [meta["namespace"]]
        keep_service = [
            {
                "source_labels": [f"__meta_kubernetes_service_label_{_label_name(key)}"],
                "regex": re.escape(value),
                "action": "keep",
            }
            for key, value in spec["selector"]["matchLabels"].items()
        ]
        for index, endpoint in enumerate(spec["endpoints"]):
            jobs.append(
                {
                    "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
                    "metrics_path": endpoint.get("path", "/metrics"),
                    "scrape_interval": endpoint.get("interval", "30s"),
                    "scrape_timeout": endpoint.get("scrapeTimeout", "10s"),
                    "kubernetes_sd_configs": [
                        {
                            "role": "endpoints",
                            "kubeconfig_file": str(kubeconfig),
                            "namespaces": {"names": namespaces},
                        }
                    ],
                    "relabel_configs": [
                        *keep_service,
                        {
                            "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                            "regex": re.escape(endpoint["port"]),
                            "action": "keep",
                        },
                        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
                        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
                        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                        {"target_label": "endpoint", "replacement": endpoint["port"]},
                    ],
                }
            )
    return jobs


def rule_groups(prometheus_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups of every PrometheusRule, as a Prometheus rule file holds them."""
    return [group for rule in prometheus_rules for group in rule["spec"]["groups"]]


@dataclass
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def metric_names(self) -> set[str]:
        response = httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=10)
        response.raise_for_status()
        return set(response.json()["data"])

    def targets(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
        response.raise_for_status()
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return found

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_prometheus(
    binary: Path,
    service_monitors: list[dict[str, Any]],
    prometheus_rules: list[dict[str, Any]],
    kubeconfig: Path,
) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port with the generated configuration; stopped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-prometheus-"))
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(prometheus_rules)}), encoding="utf-8")
    config = workdir / "prometheus.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"evaluation_interval": EVALUATION_INTERVAL},
                "rule_files": [str(rules)],
                "scrape_configs": scrape_configs(service_monitors, kubeconfig),
            }
        ),
        encoding="utf-8",
    )
    port = _free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited {process.returncode}:\n{prometheus.log_tail()}")
            return httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200

        wait_for(
            ready,
            "prometheus to be ready",
            timeout=START_TIMEOUT,
            interval=0.5,
            retry_on=(httpx.HTTPError,),
            describe=prometheus.log_tail,
        )
        yield prometheus
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def documented_metrics(metrics_doc: Path) -> set[str]:
    """Every metric name in the first column of docs/metrics.md's metric tables (not its alert tables)."""
    names: set[str] = set()
    in_metric_table = False
    for line in metrics_doc.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            in_metric_table = False
        elif line.startswith("| metric |"):
            in_metric_table = True
        elif in_metric_table and (match := re.match(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|", line)):
            names.add(match.group(1))
    return names
