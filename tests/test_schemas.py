"""The JSON Schemas for editors list exactly the keys the parser accepts, and pass valid files.

When a key is added to the parser (a `*_KEYS` constant), the schema must list it too; when
a new kind of mapping is checked (`check_keys(...)` with a new constant or inline keys),
it needs a constant named here and an object in a schema. These tests say which.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

import fsql
from fsql.datatypes import TYPE_NAMES
from fsql.schemas import SCHEMA_FILES, load_schema

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(fsql.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures"

# Each constant the parser checks keys with -> (schema, JSON pointer of the object listing them).
SYNCED = {
    "fsql.definitions.SECTION_KEYS": ("definitions", ""),
    "fsql.definitions.ENTITY_KEYS": ("definitions", "/$defs/entity"),
    "fsql.definitions.JOIN_KEY_KEYS": ("definitions", "/$defs/join_key"),
    "fsql.definitions.SOURCE_KEYS": ("definitions", "/$defs/source"),
    "fsql.definitions.FEATURE_VIEW_KEYS": ("definitions", "/$defs/feature_view"),
    "fsql.definitions.FEATURE_KEYS": ("definitions", "/$defs/feature"),
    "fsql.aggregations.AGGREGATION_KEYS": ("definitions", "/$defs/aggregation"),
    "fsql.definitions.FEATURE_SERVICE_KEYS": ("definitions", "/$defs/feature_service"),
    "fsql.derived.DERIVED_VIEW_KEYS": ("definitions", "/$defs/derived_view"),
    "fsql.derived.DERIVED_FEATURE_KEYS": ("definitions", "/$defs/derived_feature"),
    "fsql.datatests.parse.TEST_KEYS": ("definitions", "/$defs/test_mapping"),
    "fsql.datatests.parse.NOT_NULL_KEYS": ("definitions", "/$defs/test_not_null"),
    "fsql.datatests.parse.UNIQUE_KEYS": ("definitions", "/$defs/test_unique"),
    "fsql.datatests.parse.ACCEPTED_VALUES_KEYS": ("definitions", "/$defs/test_accepted_values"),
    "fsql.datatests.parse.ACCEPTED_RANGE_KEYS": ("definitions", "/$defs/test_accepted_range"),
    "fsql.datatests.parse.ROW_COUNT_KEYS": ("definitions", "/$defs/test_row_count"),
    "fsql.datatests.parse.EXPRESSION_KEYS": ("definitions", "/$defs/test_expression"),
    "fsql.datatests.parse.FRESHNESS_KEYS": ("definitions", "/$defs/test_freshness"),
    "fsql.drift.parse.DRIFT_KEYS": ("definitions", "/$defs/drift"),
    "fsql.project.PROJECT_KEYS": ("project", ""),
    "fsql.project.PROFILE_KEYS": ("profiles", "/$defs/profile"),
    "fsql.project.TARGET_KEYS": ("profiles", "/$defs/target"),
}


def pointer(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in filter(None, path.split("/")):
        node = node[part]
    return node


def check_keys_calls() -> list[tuple[str, int, ast.expr]]:
    """Every `x.check_keys(keys, ...)` in the package: (module, line, the keys argument)."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr == "check_keys" and node.args:
                calls.append((module, node.lineno, node.args[0]))
    return calls


def test_every_check_of_keys_uses_a_constant_the_schemas_follow() -> None:
    calls = check_keys_calls()
    assert len(calls) >= len(SYNCED)
    unsynced = [
        f"{module}:{line}: check_keys({ast.unparse(arg)})"
        for module, line, arg in calls
        if not (isinstance(arg, ast.Name) and f"{module}.{arg.id}" in SYNCED)
    ]
    assert not unsynced, (
        "name these keys as a module constant, add the constant to SYNCED in tests/test_schemas.py with the "
        f"schema object that lists them, and list them there: {unsynced}"
    )


@pytest.mark.parametrize("constant", sorted(SYNCED))
def test_the_schema_lists_exactly_the_keys_the_parser_accepts(constant: str) -> None:
    module, name = constant.rsplit(".", 1)
    keys = set(getattr(importlib.import_module(module), name))
    kind, path = SYNCED[constant]
    node = pointer(load_schema(kind), path)
    listed = set(node["properties"])
    where = f"fsql/schemas/{SCHEMA_FILES[kind]}#{path}"
    assert not keys - listed, f"{where} lacks {sorted(keys - listed)} ({constant})"
    assert not listed - keys, f"{where} lists {sorted(listed - keys)}, not in {constant}"
    assert node["additionalProperties"] is False  # an unknown key is an error to the parser too


def test_type_names_are_the_parsers() -> None:
    names = load_schema("definitions")["$defs"]["type_name"]["anyOf"]
    assert names[0]["enum"] == list(TYPE_NAMES)
    any_case = Draft202012Validator(names[1])
    assert all(any_case.is_valid(f" {name.upper()} ") for name in TYPE_NAMES)
    assert not any_case.is_valid("timestmap")


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_each_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    Draft202012Validator.check_schema(load_schema(kind))


def errors(kind: str, path: Path) -> list[str]:
    document = YAML(typ="safe").load(path.read_text())
    validator = Draft202012Validator(load_schema(kind))
    return [f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def project_files(root: Path) -> list[tuple[str, Path]]:
    found = [("project", root / "fsql_project.yml"), ("profiles", root / "profiles.yml")]
    return found + [("definitions", p) for p in sorted((root / "definitions").rglob("*.yml"))]


VALID = [*project_files(REPO), *project_files(FIXTURES / "valid_project")]


@pytest.mark.parametrize(("kind", "path"), VALID, ids=[str(p.relative_to(REPO)) for _, p in VALID])
def test_valid_projects_pass_the_schemas(kind: str, path: Path) -> None:
    assert errors(kind, path) == []


# Negative fixtures whose mistake is one of shape: the schema flags them as the parser does.
SHAPE_MISTAKES = [
    "derived_request_type",
    "bad_column_type",
    "bad_type",
    "entity_no_join_keys",
    "kind_columns_list",
    "kind_entities_mapping",
    "kind_entities_number",
    "kind_feature_string",
    "kind_file_list",
    "kind_list_for_string",
    "kind_section_mapping",
    "kind_string_for_bool",
    "kind_string_for_list",
    "missing_feature_name",
    "missing_feature_type",
    "missing_source_timestamp",
    "missing_view_source",
    "name_feature_mixed_case",
    "name_injection",
    "name_key_mixed_case",
    "name_space",
    "name_uppercase",
    "source_no_location",
    "source_two_locations",
    "ttl_fractional",
    "ttl_negative",
    "ttl_spelled_out",
    "ttl_zero",
    "unknown_key_entity",
    "unknown_key_feature",
    "unknown_key_service",
    "unknown_key_source",
    "unknown_key_view",
    "unknown_section",
    "view_entity_and_entities",
    "view_no_features",
    "agg_bad_window",
    "agg_empty_windows",
    "agg_unknown_function",
    "agg_unknown_input_type",
    "agg_with_features",
]


@pytest.mark.parametrize("name", SHAPE_MISTAKES)
def test_the_schema_flags_mistakes_of_shape(name: str) -> None:
    assert errors("definitions", FIXTURES / "invalid" / f"{name}.yml")


def test_mistakes_the_schema_cannot_see_are_left_to_validate() -> None:
    """The other negative fixtures (references, SQL, templates) are well-shaped: no false alarm."""
    parsed = [p for p in sorted((FIXTURES / "invalid").glob("*.yml")) if not p.stem.startswith("yaml_")]
    others = [p for p in parsed if p.stem not in SHAPE_MISTAKES]
    assert len(others) > 20
    assert [e for p in others for e in errors("definitions", p)] == []
