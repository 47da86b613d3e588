"""JSON Schemas (draft 2020-12) of fsql's YAML files, so that editors complete and check them.

With yaml-language-server (VS Code's YAML extension, and others), start a file with
`# yaml-language-server: $schema=<path or URL of the schema>`, or map file patterns to
schemas in the editor's settings. `fsql init` copies the schemas into a new project's
`.fsql/schemas/` and starts each file it writes with that line.

The schemas list exactly the keys the parser accepts (`fsql.definitions.*_KEYS`,
`fsql.project.*_KEYS`); tests/test_schemas.py fails when the two drift apart.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

# What each schema describes -> its file, package data beside this module.
SCHEMA_FILES = {
    "definitions": "definitions.schema.json",  # a file under definitions/
    "project": "project.schema.json",  # fsql_project.yml
    "profiles": "profiles.schema.json",  # profiles.yml
}


def schema_text(kind: str) -> str:
    """The text of one schema: 'definitions', 'project' or 'profiles'."""
    return files(__name__).joinpath(SCHEMA_FILES[kind]).read_text(encoding="utf-8")


def load_schema(kind: str) -> dict[str, Any]:
    """One schema as data (see `schema_text`)."""
    schema: dict[str, Any] = json.loads(schema_text(kind))
    return schema


def write_schemas(directory: Path) -> list[Path]:
    """Copy every schema into `directory` (created if needed); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in SCHEMA_FILES.items():
        path = directory / name
        path.write_text(schema_text(kind), encoding="utf-8")
        written.append(path)
    return written
