"""Documentation that is generated from code must match the code."""

from __future__ import annotations

from tools import settings_doc


def test_configuration_doc_lists_every_setting() -> None:
    text = settings_doc.DOC.read_text()

    assert settings_doc.updated(text) == text, "run `python -m tools.settings_doc`"
    for _, cls, _ in settings_doc.SECTIONS:
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        for name in cls.model_fields:
            assert f"`{prefix}{name.upper()}`" in text
