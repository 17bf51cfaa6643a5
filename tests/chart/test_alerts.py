"""The PrometheusRule: promtool check/test rules, runbook links, and only metric names the services export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.support import CHART, MONITORING, REPO, RenderFn

pytestmark = pytest.mark.kube

PROMTOOL_DIR = Path(__file__).resolve().parent / "promtool"
RUNBOOKS = REPO / "docs" / "runbooks"
EXPECTED_ALERTS = {
    "ParleyApiErrorBudgetBurn",
    "ParleyApiLatencySLO",
    "ParleyLlmErrorRatioHigh",
    "ParleyLlmFallbackRatioHigh",
    "ParleyLlmRateLimited",
    "ParleyLlmSpendHigh",
    "ParleyBotUpdateLoopStalled",
    "ParleyOperatorReconcileErrors",
    "ParleyDbPoolSaturation",
    "ParleyDatabaseDown",
    "ParleyServiceTargetsDown",
    "ParleyApiUnavailable",
    "ParleyBotWebhookNotReceiving",
}
PRODUCTION = str(CHART / "values-production.yaml")
# Cases about the bundled PostgreSQL's exporter: production uses a managed database without one.
BUNDLED_ONLY = "(bundled exporter)"


def rule_groups(
    render: RenderFn, sets: tuple[str, ...] = (), values: tuple[str, ...] = ("dev",)
) -> list[dict[str, Any]]:
    """The rendered PrometheusRule's groups (release parley in namespace parley)."""
    rendered = render(values=list(values), api_versions=[MONITORING], sets=list(sets))
    rule = rendered.get("PrometheusRule", "parley")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alerting rules by name."""
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def promtool(promtool_bin: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool in ``cwd``."""
    return subprocess.run(
        [str(promtool_bin), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_every_alert_is_there_with_a_runbook(render: RenderFn) -> None:
    """The expected alerts, each with severity, summary, description and a runbook in docs/runbooks/."""
    rules = alerts(rule_groups(render))
    assert set(rules) == EXPECTED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        assert annotations["runbook_url"].endswith(f"/docs/runbooks/{name}.md"), name
        runbook = RUNBOOKS / f"{name}.md"
        assert runbook.is_file(), f"missing runbook {runbook}"
        text = runbook.read_text()
        for heading in ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation"):
            assert heading in text, f"{runbook.name} lacks {heading}"
        assert "kubectl" in text, f"{runbook.name} gives no diagnosis commands"


def test_runbook_base_url_and_extra_labels(render: RenderFn) -> None:
    """runbookBaseUrl and additionalAlertLabels reach every alert."""
    groups = rule_groups(
        render,
        (
            "metrics.prometheusRule.runbookBaseUrl=https://wiki.example/parley/docs/runbooks/",
            "metrics.prometheusRule.additionalAlertLabels.team=chat",
        ),
    )
    for name, rule in alerts(groups).items():
        assert rule["annotations"]["runbook_url"] == f"https://wiki.example/parley/docs/runbooks/{name}.md"
        assert rule["labels"]["team"] == "chat"


def test_burn_rate_alert_is_multi_window(render: RenderFn) -> None:
    """SRE workbook: (1h and 5m above 14.4x budget) or (6h and 30m above 6x)."""
    rule = alerts(rule_groups(render))["ParleyApiErrorBudgetBurn"]
    expr = " ".join(rule["expr"].split())
    for window, factor in (("1h", "14.4"), ("5m", "14.4"), ("6h", "6"), ("30m", "6")):
        assert f"error_ratio_rate{window}" in expr
        assert re.search(rf"error_ratio_rate{window}\{{[^}}]*\}} > \({factor} \* \(1 - 0.999\)\)", expr), (
            window
        )


def production_cases(cases: dict[str, Any], extra_labels: dict[str, str]) -> dict[str, Any]:
    """The promtool cases as they apply to the production render: its additionalAlertLabels on
    every expected alert, and no case about the bundled PostgreSQL's exporter."""
    kept = [case for case in cases["tests"] if BUNDLED_ONLY not in case["name"]]
    for case in kept:
        for check in case.get("alert_rule_test", []):
            for alert in check["exp_alerts"]:
                alert["exp_labels"] = {**alert["exp_labels"], **extra_labels}
    return {**cases, "tests": kept}


@pytest.fixture(params=["default", "production"])
def rules_dir(request: pytest.FixtureRequest, render: RenderFn, tmp_path: Path) -> Path:
    """The rendered groups and the promtool unit tests side by side, for the default values and
    for values-production.yaml (a managed database, webhook mode, extra alert labels).

    rules-full.yaml is the rule file as rendered; rules.yaml is the same without annotations, so
    alerts_test.yaml states labels only (promtool compares annotations exactly);
    annotations_test.yaml checks the rendered annotations of one alert on the full file.
    """
    production = request.param == "production"
    tmp_path = tmp_path / request.param
    tmp_path.mkdir()
    groups = rule_groups(render, values=(PRODUCTION,) if production else ("dev",))
    (tmp_path / "rules-full.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    cases = yaml.safe_load((PROMTOOL_DIR / "alerts_test.yaml").read_text())
    if production:
        extra = yaml.safe_load(Path(PRODUCTION).read_text())["metrics"]["prometheusRule"]
        cases = production_cases(cases, extra.get("additionalAlertLabels") or {})
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(cases, sort_keys=False))
    shutil.copy(PROMTOOL_DIR / "annotations_test.yaml", tmp_path / "annotations_test.yaml")
    return tmp_path


def test_promtool_check_rules(promtool_bin: Path, rules_dir: Path) -> None:
    """promtool accepts the rendered rules (PromQL and annotation templates)."""
    result = promtool(promtool_bin, "check", "rules", "rules-full.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_every_alert_fires_and_stays_quiet(promtool_bin: Path, rules_dir: Path) -> None:
    """promtool's unit tests pass, with a firing and a quiet case for every alert."""
    cases = yaml.safe_load((rules_dir / "alerts_test.yaml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS
    result = promtool(promtool_bin, "test", "rules", "alerts_test.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_alert_annotations_render(promtool_bin: Path, rules_dir: Path) -> None:
    """Summary, description (with the value humanized) and runbook_url as Alertmanager receives them."""
    if rules_dir.name == "production":
        pytest.skip("annotations are checked on the default render")
    result = promtool(promtool_bin, "test", "rules", "annotations_test.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_broken_expectation(promtool_bin: Path, rules_dir: Path) -> None:
    """The harness is not vacuous: expecting the wrong severity fails."""
    broken = (rules_dir / "alerts_test.yaml").read_text().replace("severity: critical", "severity: page", 1)
    (rules_dir / "alerts_test.yaml").write_text(broken)
    result = promtool(promtool_bin, "test", "rules", "alerts_test.yaml", cwd=rules_dir)
    assert result.returncode != 0
