"""JSON schemas for kubeconform from a kube-apiserver's OpenAPI v3, so nothing is downloaded at test time.

kubeconform looks a resource up as ``{kind}-{group}-{version}.json`` (lower case; ``group`` is the first
label of the API group, left out for the core group: ``deployment-apps-v1.json``, ``service-v1.json``,
``servicemonitor-monitoring-v1.json``). Each file written here is standalone: the kind's schema with
every schema it references under ``definitions`` (``$ref`` rewritten to ``#/definitions/...``, recursion
kept), in JSON Schema draft 4, which is what kubeconform compiles.

Strict, like kubectl's ``--validate=strict`` and the ``-standalone-strict`` schemas kubeconform is
usually given: every object schema that lists ``properties`` refuses other fields
(``additionalProperties: false``) unless it already says what extra fields may be (a map) or is
``x-kubernetes-preserve-unknown-fields``. ``nullable`` becomes a ``null`` type. Custom resources come
out the same way once their CRDs are installed: the API server publishes their ``openAPIV3Schema``.

kubeconform's own ``scripts/openapi2jsonschema.py`` converts CRD files only (not the API server's
OpenAPI, with its ``$ref``s), so this is written for the job rather than vendored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DRAFT4 = "http://json-schema.org/draft-04/schema#"
OPENAPI_REF = "#/components/schemas/"
LOCAL_REF = "#/definitions/"
GVK = "x-kubernetes-group-version-kind"

# Keywords whose value is a map of name -> schema; a schema, or a list of schemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties"})
_SCHEMAS = frozenset({"items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"})

JsonGetter = Callable[[str], Any]


def schema_filename(kind: str, group: str, version: str) -> str:
    """kubeconform's file name for a kind: ``{kind}-{first label of group}-{version}.json``, lower case."""
    suffix = f"-{group.partition('.')[0]}" if group else ""
    return f"{kind}{suffix}-{version}.json".lower()


def group_version_paths(index: Mapping[str, Any]) -> list[str]:
    """The group-version documents of an ``/openapi/v3`` index (``api/v1``, ``apis/<group>/<version>``)."""
    paths = index["paths"]
    chosen = [p for p in paths if p == "api/v1" or (p.startswith("apis/") and p.count("/") == 2)]
    return [paths[p]["serverRelativeURL"] for p in sorted(chosen)]


def fetch_components(get_json: JsonGetter) -> dict[str, Any]:
    """Every component schema the API server publishes (its OpenAPI v3, one document per group-version).

    ``get_json(path)`` GETs a server-relative path and returns the decoded JSON. A schema name published
    by several documents (ObjectMeta, ...) must have the same content in each, but for the kinds it is
    declared as (DeleteOptions lists each document's own group): those are merged.
    """
    components: dict[str, Any] = {}
    for url in group_version_paths(get_json("/openapi/v3")):
        for name, schema in get_json(url).get("components", {}).get("schemas", {}).items():
            components[name] = _merge(components.get(name), schema, f"{name} ({url})")
    return components


def _merge(seen: Any, schema: Any, where: str) -> Any:
    """``schema``, its kinds joined with those of the same schema seen in another document."""
    if seen is None or seen == schema:
        return schema
    kinds = [*seen.get(GVK, []), *(k for k in schema.get(GVK, []) if k not in seen.get(GVK, []))]
    if {**seen, GVK: kinds} != {**schema, GVK: kinds}:
        raise ValueError(f"{where} differs between the API server's OpenAPI v3 documents")
    return {**schema, GVK: kinds}


def _strict(node: Any, refs: set[str]) -> Any:
    """A copy of one schema, strict, with local ``$ref``s; names it references are added to ``refs``."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strict(sub, refs) for name, sub in value.items()}
        elif key in _SCHEMAS and isinstance(value, list):
            out[key] = [_strict(sub, refs) for sub in value]
        elif key in _SCHEMAS:
            out[key] = _strict(value, refs)
        elif key == "$ref" and isinstance(value, str):
            if not value.startswith(OPENAPI_REF):
                raise ValueError(f"unexpected $ref {value!r}")
            name = value.removeprefix(OPENAPI_REF)
            refs.add(name)
            out[key] = LOCAL_REF + name
        else:  # a keyword with a plain value (type, enum, default, x-kubernetes-*): kept as it is
            out[key] = value
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def standalone_schema(components: Mapping[str, Any], name: str, group: str, version: str, kind: str) -> Any:
    """The strict, self-contained schema of the component ``name`` as the kind ``group/version, kind``."""
    refs: set[str] = set()
    root = _strict(components[name], refs)
    definitions: dict[str, Any] = {}
    pending = sorted(refs)
    while pending:
        ref = pending.pop()
        if ref in definitions:
            continue
        if ref not in components:
            raise ValueError(f"{name} references {ref}, which the API server does not publish")
        found: set[str] = set()
        definitions[ref] = _strict(components[ref], found)
        pending.extend(sorted(found - definitions.keys()))
    api_version = f"{group}/{version}" if group else version
    properties = root.get("properties", {})
    if "apiVersion" in properties:
        properties["apiVersion"] = {**properties["apiVersion"], "enum": [api_version]}
    if "kind" in properties:
        properties["kind"] = {**properties["kind"], "enum": [kind]}
    return {"$schema": DRAFT4, **root, "definitions": dict(sorted(definitions.items()))}


def kubeconform_schemas(components: Mapping[str, Any]) -> dict[str, Any]:
    """File name -> schema for every kind the components declare (``x-kubernetes-group-version-kind``)."""
    files: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for name in sorted(components):
        for gvk in components[name].get(GVK, []):
            filename = schema_filename(gvk["kind"], gvk["group"], gvk["version"])
            if owners.setdefault(filename, name) != name:
                raise ValueError(f"{owners[filename]} and {name} both map to {filename}")
            files[filename] = standalone_schema(components, name, gvk["group"], gvk["version"], gvk["kind"])
    return files


def write_schemas(directory: Path, schemas: Mapping[str, Any]) -> str:
    """Write the schema files into ``directory``; return kubeconform's ``-schema-location`` for them."""
    directory.mkdir(parents=True, exist_ok=True)
    for filename, schema in schemas.items():
        (directory / filename).write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
    return f"{directory}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
