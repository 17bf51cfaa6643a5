"""docs/guides/deployment.md's values reference is generated from values.yaml and must match it.

Regenerate: `uv run python -m tests.chart.test_values_reference` rewrites the section in place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, REPO

DOC = REPO / "docs" / "guides" / "deployment.md"
BEGIN = "<!-- values:begin"
END = "<!-- values:end -->"
LINKS = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def default_text(value: Any) -> str:
    """A default as shown in the table: JSON-like, strings quoted."""
    if isinstance(value, str):
        return '`"' + value + '"`'
    dumped = yaml.safe_dump(value, default_flow_style=True).strip()
    return "`" + dumped.removesuffix("...").strip() + "`"


def values_table() -> str:
    """One table per `## @section`, one row per `## @param`, defaults read from values.yaml (a
    readme-generator modifier such as `[default: ...]` is left out: the default comes from the value)."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    out: list[str] = []
    for line in text.splitlines():
        if section := re.match(r"^## @section (.*)$", line):
            out.append(f"\n### {section.group(1)}\n\n| value | default | meaning |\n| --- | --- | --- |")
        elif param := re.match(r"^## @param (\S+) (?:\[[^\]]*\] )?(.*)$", line):
            node = values
            for part in param.group(1).split("."):
                node = node[part]
            meaning = param.group(2).replace("|", "/")
            out.append(f"| `{param.group(1)}` | {default_text(node)} | {meaning} |")
    return "\n".join(out).strip()


def updated(doc: str) -> str:
    """The document with the generated section replaced."""
    start = doc.index(BEGIN)
    start = doc.index("\n", start) + 1
    end = doc.index(END)
    return doc[:start] + values_table() + "\n" + doc[end:]


def test_values_reference_is_current() -> None:
    """The table lists every value with its current default."""
    doc = DOC.read_text()
    assert updated(doc) == doc, "run `uv run python -m tests.chart.test_values_reference`"


def test_deployment_guides_link_to_existing_files() -> None:
    """Relative links of the deployment guides and runbooks point at files that exist (or soon will)."""
    pages = [
        DOC,
        REPO / "docs" / "guides" / "production-deployment.md",
        *(REPO / "docs" / "runbooks").glob("*.md"),
    ]
    written_elsewhere = {"secrets-management.md", "metrics.md", "operator.md"}  # other engineers' pages
    for page in pages:
        for target in LINKS.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path: Path = (page.parent / target).resolve()
            assert path.exists() or path.name in written_elsewhere, f"{page.name}: broken link {target}"


if __name__ == "__main__":
    DOC.write_text(updated(DOC.read_text()))
