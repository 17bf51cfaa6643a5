"""Documentation that is generated from code must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from tools import settings_doc

REPO = Path(__file__).resolve().parents[1]
LINKS = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_configuration_doc_lists_every_setting() -> None:
    text = settings_doc.DOC.read_text()

    assert settings_doc.updated(text) == text, "run `python -m tools.settings_doc`"
    for _, cls, _ in settings_doc.SECTIONS:
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        for name in cls.model_fields:
            assert f"`{prefix}{name.upper()}`" in text


def test_relative_links_point_at_files_that_exist() -> None:
    """Every relative link of the docs, the READMEs and the runbooks names a file of the repository."""
    pages = [REPO / "README.md", REPO / "charts" / "parley" / "README.md", *(REPO / "docs").rglob("*.md")]
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in pages
        for target in LINKS.findall(page.read_text())
        if not target.startswith(("http://", "https://", "mailto:")) and not (page.parent / target).exists()
    ]
    assert broken == []
