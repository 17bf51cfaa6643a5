"""charts/parley/README.md: a hand-written head, then the Parameters section that Bitnami's
readme-generator-for-helm writes from the `## @param` / `## @section` comments of values.yaml.

Regenerate: `make chart-readme`. The generator is pinned by tools/chart-readme/package-lock.json and
installed there with `make chart-readme-deps` (npm ci; `make test` does it when npm is there). Without
npm the tests skip (fail under CI=true); with npm but without the installed generator they fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from parley_testing.envtest_tools import in_ci
from tests.chart.support import CHART, REPO

README = CHART / "README.md"
TOOL_DIR = REPO / "tools" / "chart-readme"
PACKAGE = "@bitnami/readme-generator-for-helm"
GENERATOR = TOOL_DIR / "node_modules" / ".bin" / "readme-generator"
LINKS = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def generator() -> Path:
    """The pinned generator: skip without node/npm (fail in CI), fail if it is not installed as locked."""
    absent = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if absent:
        reason = f"{' and '.join(absent)} not found: install Debian's nodejs and npm (the chart README check)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    locked = json.loads((TOOL_DIR / "package-lock.json").read_text())["packages"][f"node_modules/{PACKAGE}"]
    installed = TOOL_DIR / "node_modules" / PACKAGE / "package.json"
    version = json.loads(installed.read_text())["version"] if installed.is_file() else None
    if not GENERATOR.exists() or version != locked["version"]:
        have = f"version {version} is installed" if version else "it is not installed"
        pytest.fail(
            f"{PACKAGE} {locked['version']} is pinned but {have}: run `make chart-readme-deps`",
            pytrace=False,
        )
    return GENERATOR


def run_generator(values: Path, readme: Path) -> subprocess.CompletedProcess[str]:
    """readme-generator on ``values``, rewriting ``readme`` in place."""
    return subprocess.run(
        [str(generator()), "--values", str(values), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_readme_parameters_are_generated_from_values(tmp_path: Path) -> None:
    """The generator accepts every @param of values.yaml, and leaves the committed README unchanged."""
    shutil.copy(CHART / "values.yaml", tmp_path / "values.yaml")
    shutil.copy(README, tmp_path / "README.md")
    result = run_generator(tmp_path / "values.yaml", tmp_path / "README.md")
    assert result.returncode == 0, f"readme-generator refused values.yaml:\n{result.stdout}{result.stderr}"
    assert (tmp_path / "README.md").read_text() == README.read_text(), (
        "charts/parley/README.md is not the generator's output for values.yaml: run `make chart-readme`"
    )


def test_generator_refuses_an_undocumented_value(tmp_path: Path) -> None:
    """The check is not vacuous: a value without a @param fails the generator."""
    values = (CHART / "values.yaml").read_text() + "\nundocumentedValue: 1\n"
    (tmp_path / "values.yaml").write_text(values)
    shutil.copy(README, tmp_path / "README.md")
    result = run_generator(tmp_path / "values.yaml", tmp_path / "README.md")
    assert result.returncode != 0
    assert "Missing metadata for key: undocumentedValue" in result.stdout


def test_readme_head_installs_and_links_the_guides() -> None:
    """The hand-written head: an install command, and links (to files that exist) to the guides."""
    head = README.read_text().split("\n## Parameters\n", 1)[0]
    assert "helm install parley charts/parley" in head
    targets = LINKS.findall(head)
    assert {"../../docs/guides/deployment.md", "../../docs/configuration.md"} <= set(targets)
    for target in targets:
        assert (README.parent / target).resolve().exists(), f"broken link {target}"
