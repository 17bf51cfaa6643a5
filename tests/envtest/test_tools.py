"""Proves the pinned helm and promtool binaries render charts and validate Prometheus files."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.kube


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool and capture its output as text."""
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def write(path: Path, content: str) -> Path:
    """Write dedented text to `path`, creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


@pytest.fixture
def tiny_chart(tmp_path: Path) -> Path:
    """A minimal chart whose ConfigMap echoes values and the capabilities helm reports."""
    chart = tmp_path / "demo"
    write(
        chart / "Chart.yaml",
        """\
        apiVersion: v2
        name: demo
        version: 0.1.0
        kubeVersion: ">=1.30.0-0"
        """,
    )
    write(chart / "values.yaml", "greeting: hello\nowner: null\n")
    write(
        chart / "templates" / "configmap.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-{{ .Chart.Name }}
          namespace: {{ .Release.Namespace }}
        data:
          greeting: {{ .Values.greeting | quote }}
          owner: {{ required "owner is required" .Values.owner | quote }}
          kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
          hasMonitoring: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" | quote }}
        """,
    )
    return chart


def test_helm_template_renders_values_and_capabilities(helm_bin: Path, tiny_chart: Path) -> None:
    """`helm template` renders overrides, a current KubeVersion and --api-versions."""
    version = run(helm_bin, "version", "--template", "{{.Version}}")
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"v3\.\d+\.\d+", version.stdout), version.stdout

    result = run(
        helm_bin,
        "template",
        "rel",
        tiny_chart,
        "--namespace",
        "parley",
        "--set",
        "greeting=world,owner=sre",
        "--api-versions",
        "monitoring.coreos.com/v1",
    )
    assert result.returncode == 0, result.stderr
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(docs) == 1
    configmap = docs[0]
    assert configmap["metadata"] == {"name": "rel-demo", "namespace": "parley"}
    data = configmap["data"]
    assert data["greeting"] == "world"
    assert data["owner"] == "sre"
    assert data["hasMonitoring"] == "true"
    # Stamped at build time from helm's client-go; an unstamped helm claims v1.20 and the
    # chart's kubeVersion constraint would have failed rendering.
    major, minor = (int(x) for x in data["kubeVersion"].lstrip("v").split(".")[:2])
    assert (major, minor) >= (1, 30)


def test_helm_template_reports_missing_required_value(helm_bin: Path, tiny_chart: Path) -> None:
    """A `required` value left unset makes `helm template` fail with the chart's message."""
    result = run(helm_bin, "template", "rel", tiny_chart)
    assert result.returncode != 0
    assert "owner is required" in result.stderr
    assert result.stdout == ""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """A one-alert rules file used by the promtool checks."""
    return write(
        tmp_path / "rules.yml",
        """\
        groups:
          - name: parley.test
            rules:
              - alert: ParleyDown
                expr: up{job="parley"} == 0
                for: 1m
                labels:
                  severity: critical
                annotations:
                  summary: Parley target {{ $labels.instance }} is down
        """,
    )


def test_promtool_check_config_and_rules(promtool_bin: Path, rules_file: Path, tmp_path: Path) -> None:
    """promtool accepts a valid config and rules file and rejects bad PromQL."""
    config = write(
        tmp_path / "prometheus.yml",
        """\
        global:
          scrape_interval: 15s
        rule_files:
          - rules.yml
        scrape_configs:
          - job_name: parley
            static_configs:
              - targets: ["127.0.0.1:8000"]
        """,
    )
    checked = run(promtool_bin, "check", "config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    assert "1 rules found" in checked.stdout

    rules = run(promtool_bin, "check", "rules", rules_file)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 1 rules found" in rules.stdout

    broken = write(
        tmp_path / "broken.yml",
        "groups:\n  - name: x\n    rules:\n      - alert: Bad\n        expr: up ==\n",
    )
    failed = run(promtool_bin, "check", "rules", broken)
    assert failed.returncode != 0
    assert "parse error" in (failed.stdout + failed.stderr)


def test_promtool_unit_tests_an_alert(promtool_bin: Path, rules_file: Path, tmp_path: Path) -> None:
    """`promtool test rules` evaluates the alert over a synthetic series (fires after `for`)."""
    write(
        tmp_path / "rules_test.yml",
        """\
        rule_files: [rules.yml]
        evaluation_interval: 1m
        tests:
          - interval: 1m
            input_series:
              - series: 'up{job="parley", instance="api:8000"}'
                values: '1 0 0 0'
            alert_rule_test:
              - eval_time: 1m
                alertname: ParleyDown
                exp_alerts: []
              - eval_time: 3m
                alertname: ParleyDown
                exp_alerts:
                  - exp_labels: {severity: critical, job: parley, instance: "api:8000"}
                    exp_annotations: {summary: "Parley target api:8000 is down"}
        """,
    )
    result = run(promtool_bin, "test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
