"""The project file (fsql_project.yml) and its targets (profiles.yml), dbt-style.

A target names its connections as SQLAlchemy URLs; the SQL dialect follows from the
offline URL unless the target sets one. Strings may use `{{ env_var('X', 'default') }}`
so that no password needs to sit in a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fsql.errors import ProjectError, did_you_mean, register_secret
from fsql.templating import TemplateRenderer
from fsql.yamlfile import Mapping, Where, load_yaml

PROJECT_FILE = "fsql_project.yml"
PROFILES_FILE = "profiles.yml"
DEFAULT_OFFLINE_URL = "duckdb:///:memory:"

# SQLAlchemy backend name -> sqlglot dialect.
DIALECT_BY_BACKEND = {
    "duckdb": "duckdb",
    "postgresql": "postgres",
    "postgres": "postgres",
    "bigquery": "bigquery",
    "spark": "spark",
    "databricks": "databricks",
    "hive": "spark",
    "snowflake": "snowflake",
}


@dataclass(frozen=True)
class Target:
    name: str
    offline_url: str
    dialect: str
    online_url: str | None = None
    online_schema: str = "fsql_online"


@dataclass(frozen=True)
class ProjectConfig:
    name: str
    root: Path
    definitions_dir: Path
    templates_dir: Path
    target_dir: Path
    dialect: str
    vars: dict[str, Any]
    seed_script: Path | None
    target: Target
    targets: tuple[str, ...] = field(default=())


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above `start` that holds fsql_project.yml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectError(
        f"no {PROJECT_FILE} in {start} or any parent directory: run fsql from a project "
        f"directory, or pass --project-dir"
    )


def load_project_config(
    project_dir: Path | str = ".",
    *,
    target: str | None = None,
    profiles_dir: Path | str | None = None,
    vars: dict[str, Any] | None = None,
) -> ProjectConfig:
    """Read fsql_project.yml and select a target from profiles.yml.

    Raises:
        ProjectError: a file is missing or wrong, or the target does not exist.
        DefinitionError: a file is not valid YAML.
    """
    root = find_project_root(Path(project_dir))
    path = root / PROJECT_FILE
    renderer = TemplateRenderer()
    raw = Mapping(_render_tree(load_yaml(path), renderer, path), path=path, what=PROJECT_FILE)
    raw.check_keys(("name", "profile", "definitions", "templates", "target-path", "dialect", "vars", "seed"))
    name = raw.required("name", str)
    merged_vars = dict(raw.get("vars", dict, {}))
    merged_vars.update(vars or {})
    seed = raw.get("seed", str, "")
    return ProjectConfig(
        name=name,
        root=root,
        definitions_dir=root / raw.get("definitions", str, "definitions"),
        templates_dir=root / raw.get("templates", str, "templates"),
        target_dir=root / raw.get("target-path", str, "target"),
        dialect=raw.get("dialect", str, "duckdb"),
        vars=merged_vars,
        seed_script=root / seed if seed else None,
        **_select_target(raw.get("profile", str, name), root, target, profiles_dir, renderer),
    )


def _select_target(
    profile: str, root: Path, wanted: str | None, profiles_dir: Path | str | None, renderer: TemplateRenderer
) -> dict[str, Any]:
    path = _find_profiles(root, profiles_dir)
    if path is None:
        if wanted not in (None, "dev"):
            raise ProjectError(f"target '{wanted}' requested but no {PROFILES_FILE} was found in {root}")
        return {"target": Target("dev", DEFAULT_OFFLINE_URL, "duckdb"), "targets": ("dev",)}
    profiles = Mapping(_render_tree(load_yaml(path), renderer, path), path=path, what=PROFILES_FILE)
    if profile not in profiles.data:
        raise ProjectError(
            f"{path}: no profile named '{profile}' (the project's 'profile', or its name)."
            f"{did_you_mean(profile, list(profiles.data))} Add a top-level '{profile}:' entry."
        )
    entry = Mapping(profiles.data[profile], path=path, what=f"profile '{profile}'", where=profiles.where_value(profile))
    entry.check_keys(("target", "outputs"))
    outputs = Mapping(entry.required("outputs", dict), path=path, what=f"profile '{profile}' outputs")
    name = wanted or entry.get("target", str, "dev")
    if name not in outputs.data:
        raise ProjectError(
            f"{path}: profile '{profile}' has no target '{name}'.{did_you_mean(name, list(outputs.data))} "
            f"Targets: {', '.join(outputs.data)}."
        )
    return {"target": _parse_target(name, outputs, path), "targets": tuple(outputs.data)}


def _find_profiles(root: Path, profiles_dir: Path | str | None) -> Path | None:
    explicit = profiles_dir or os.environ.get("FSQL_PROFILES_DIR")
    candidates = [Path(explicit)] if explicit else [root, Path.home() / ".fsql"]
    for directory in candidates:
        if (directory / PROFILES_FILE).is_file():
            return directory / PROFILES_FILE
    if explicit:
        raise ProjectError(f"no {PROFILES_FILE} in {explicit} (from --profiles-dir or FSQL_PROFILES_DIR)")
    return None


def _parse_target(name: str, outputs: Mapping, path: Path) -> Target:
    raw = Mapping(outputs.data[name], path=path, what=f"target '{name}'", where=outputs.where_value(name))
    raw.check_keys(("offline", "online", "dialect", "online_schema"))
    offline = raw.get("offline", str, DEFAULT_OFFLINE_URL)
    online = raw.get("online", str, "") or None
    for key, url in (("offline", offline), ("online", online)):
        if url:
            _check_url(url, raw.where_value(key), key)
    dialect = raw.get("dialect", str, "") or dialect_from_url(offline, raw.where_value("offline"))
    return Target(name, offline, dialect, online, raw.get("online_schema", str, "fsql_online"))


def _check_url(url: str, where: Where, key: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise where.error(
            f"'{key}' is not a connection URL: write it as SQLAlchemy does, e.g. duckdb:///path.duckdb, "
            f"postgresql+psycopg://user@host:5432/db or bigquery://project"
        ) from None
    register_secret(parsed.password if isinstance(parsed.password, str) else None)


def dialect_from_url(url: str, where: Where | None = None) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in DIALECT_BY_BACKEND:
        message = (
            f"cannot tell the SQL dialect of '{backend}' URLs: set 'dialect:' on the target "
            f"(one of {', '.join(sorted(set(DIALECT_BY_BACKEND.values())))})"
        )
        raise where.error(message) if where else ProjectError(message)
    return DIALECT_BY_BACKEND[backend]


def _render_tree(node: Any, renderer: TemplateRenderer, path: Path, where: str = "") -> Any:
    """Render `{{ ... }}` in every string of a YAML tree, in place, keeping line info."""
    if isinstance(node, dict):
        for key in list(node):
            line = node.lc.value(key)[0] + 1 if isinstance(node, CommentedMap) else None
            node[key] = _render_tree(node[key], renderer, path, f"{path}:{line}" if line else str(path))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            node[index] = _render_tree(item, renderer, path, where or str(path))
    elif isinstance(node, str) and "{{" in node:
        return renderer.render_string(node, where=where or str(path))
    return node
