"""Bitnami-style conventions of charts/parley: documented values, a closed schema, commented helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.chart.support import CHART

PARAM = re.compile(r"^## @param (\S+) \S")
SECTION = re.compile(r"^## @section \S")
DEFINE = re.compile(r'define "([^"]+)"')
# Free-form maps (labels, annotations, selectors) whose keys are the user's.
FREE_MAPS = {
    "commonLabels",
    "commonAnnotations",
    "annotations",
    "labels",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "namespaceSelector",
    "podSelector",
    "ingressNamespaceSelector",
    "metricsNamespaceSelector",
    "additionalAlertLabels",
    "affinity",
}


def leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every value that is not a nested chart-defined object."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in FREE_MAPS:
            paths += leaves(value, f"{path}.")
        else:
            paths.append(path)
    return paths


def values_text() -> str:
    """values.yaml as text."""
    return (CHART / "values.yaml").read_text()


def test_every_value_is_documented_with_param() -> None:
    """Each value has exactly one `## @param path Description`, and each @param names a real value."""
    values = yaml.safe_load(values_text())
    documented = [m.group(1) for line in values_text().splitlines() if (m := PARAM.match(line))]
    assert len(documented) == len(set(documented)), "a value is documented twice"
    assert set(leaves(values)) - set(documented) == set(), "undocumented values"
    assert set(documented) - set(leaves(values)) == set(), "@param for values that do not exist"
    assert sum(1 for line in values_text().splitlines() if SECTION.match(line)) >= 10


def schema_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Objects in the schema that accept unknown keys (other than free-form string maps, and maps
    whose keys are the user's but whose entries are closed records, like model -> price)."""
    problems = []
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties")
        name = path.rsplit(".", 1)[-1]
        if isinstance(extra, dict) and extra.get("type") == "object":
            return schema_problems(extra, f"{path}.*")
        if name in FREE_MAPS:
            # User keys (string maps) or a Kubernetes API type the API server validates (affinity).
            return [] if extra in ({"type": "string"}, False) else [path]
        if extra is not False:
            problems.append(path or "(root)")
        for key, sub in schema.get("properties", {}).items():
            problems += schema_problems(sub, f"{path}.{key}" if path else key)
    return problems


def test_schema_is_closed_and_matches_values() -> None:
    """additionalProperties: false at every chart-defined level; the schema knows every value."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema_problems(schema) == []
    values = yaml.safe_load(values_text())

    def lookup(path: str) -> dict[str, Any] | None:
        node: dict[str, Any] | None = schema
        for part in path.split("."):
            node = (node or {}).get("properties", {}).get(part)
        return node

    for path in leaves(values):
        assert lookup(path) is not None, f"{path} is not in values.schema.json"


def helper_files() -> list[Path]:
    """The helper files (templates/_*.tpl), one per concern."""
    return sorted((CHART / "templates").glob("_*.tpl"))


def test_helpers_are_prefixed_and_commented() -> None:
    """Every helper is `parley.*`, defined once, and preceded by a one-line comment naming it."""
    assert len(helper_files()) >= 5
    names = []
    for path in helper_files():
        lines = path.read_text().splitlines()
        defines = [(i, m.group(1)) for i, line in enumerate(lines) if (m := DEFINE.search(line))]
        assert defines, f"{path.name} defines no helper"
        for index, name in defines:
            assert name.startswith("parley."), name
            comment = lines[index - 1]
            assert comment.startswith("{{/* "), f"{name} has no comment"
            assert comment.endswith("*/}}"), f"{name}: the comment is not one line"
            assert name in comment, f"the comment above {name} does not name it"
            names.append(name)
    assert len(names) >= 20
    assert len(names) == len(set(names)), "a helper is defined twice"


def test_validate_values_runs_every_rule() -> None:
    """parley.validateValues includes each `parley.validateValues.<rule>` once; no other file has rules."""
    text = (CHART / "templates" / "_validation.tpl").read_text()
    rules = re.findall(r'define "(parley\.validateValues\.[^"]+)"', text)
    assert len(rules) >= 20
    body = text.split('define "parley.validateValues" -}}', 1)[1].split("{{- end -}}\n\n", 1)[0]
    included = re.findall(r'include "(parley\.validateValues\.[^"]+)"', body)
    assert sorted(included) == sorted(rules), "a rule is not run, or run twice"
    others = [p.name for p in helper_files() if "validateValues" in p.read_text()]
    assert others == ["_validation.tpl"], "validation rules live in _validation.tpl"


def test_one_resource_per_template_file() -> None:
    """Each template renders one kind of object (Roles/RoleBindings: one per watched namespace)."""
    for path in sorted((CHART / "templates").rglob("*.yaml")):
        kinds = set(re.findall(r"^kind: (\w+)", path.read_text(), re.MULTILINE))
        assert len(kinds) <= 1, f"{path.relative_to(CHART)} renders {kinds}"


def test_crd_is_shipped_from_crds_dir() -> None:
    """The ApiUser CRD is installed from crds/ (Helm applies it before templates, never deletes it)."""
    crd = yaml.safe_load(Path(CHART / "crds" / "apiuser.yaml").read_text())
    assert crd["metadata"]["name"] == "apiusers.parley.dev"
