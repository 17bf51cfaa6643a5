"""Dependencies point one way: bot, api, operator -> core; the test harness (parley_testing) -> the
services. Services never import each other, the harness, the tests or the tooling."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "parley_core": ROOT / "core" / "parley_core",
    "parley_api": ROOT / "api" / "parley_api",
    "parley_bot": ROOT / "bot" / "parley_bot",
    "parley_operator": ROOT / "operator" / "parley_operator",
    "parley_testing": ROOT / "testing" / "parley_testing",
}
ALLOWED = {
    "parley_core": {"parley_core"},
    "parley_api": {"parley_api", "parley_core"},
    "parley_bot": {"parley_bot", "parley_core"},
    "parley_operator": {"parley_operator", "parley_core"},
    "parley_testing": {"parley_testing", "parley_core", "parley_api", "parley_bot", "parley_operator"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {name for name in names if name in PACKAGES or name in {"tools", "tests"}}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in PACKAGES[package].rglob("*.py")
        if (bad := _imported_packages(path) - ALLOWED[package])
    }
    assert offenders == {}
