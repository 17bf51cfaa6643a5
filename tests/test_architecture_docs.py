"""The ER diagram in docs/architecture/diagrams.md names every table and column the migrations create."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

DIAGRAMS = Path(__file__).resolve().parents[1] / "docs" / "architecture" / "diagrams.md"
ENTITY = re.compile(r"^\s{4}(\w+) \{\n(.*?)^\s{4}\}", re.MULTILINE | re.DOTALL)


def documented_schema() -> dict[str, set[str]]:
    """Tables and their columns as the erDiagram block lists them."""
    block = DIAGRAMS.read_text().split("```mermaid\nerDiagram", 1)[1].split("```", 1)[0]
    return {
        table: {line.split()[1] for line in body.strip().splitlines()}
        for table, body in ENTITY.findall(block)
    }


async def test_er_diagram_matches_the_migrated_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name <> 'alembic_version'"
            )
        )
    actual: dict[str, set[str]] = {}
    for table, column in rows:
        actual.setdefault(table, set()).add(column)

    assert documented_schema() == actual


def test_readme_links_the_diagrams() -> None:
    readme = (DIAGRAMS.parents[2] / "README.md").read_text()
    assert "docs/architecture/diagrams.md" in readme
