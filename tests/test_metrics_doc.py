"""docs/metrics.md documents every metric the code registers and links every alert's runbook."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.metric_names import REPO, exported_metrics

DOC = REPO / "docs" / "metrics.md"
RULES = REPO / "charts" / "parley" / "templates"
ALERT = re.compile(r"^\s*- alert: (\w+)", re.MULTILINE)


def test_every_registered_metric_is_documented() -> None:
    documented = DOC.read_text()
    missing = sorted(name for name in exported_metrics() if f"`{name}`" not in documented)

    assert missing == [], "document these in docs/metrics.md"


def test_every_alert_has_a_runbook_listed_in_the_metrics_doc() -> None:
    alerts = {name for path in RULES.rglob("*.yaml") for name in ALERT.findall(path.read_text())}
    documented = DOC.read_text()

    assert alerts, "no alerts found in the chart"
    for alert in sorted(alerts):
        runbook = Path("runbooks") / f"{alert}.md"
        assert (DOC.parent / runbook).is_file(), f"{alert} has no runbook"
        assert f"]({runbook.as_posix()})" in documented, f"{alert} is not listed in docs/metrics.md"
