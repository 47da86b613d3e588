"""The project file (fsql_project.yml) and its targets (profiles.yml), dbt-style.

A target names its connections as SQLAlchemy URLs; the SQL dialect follows from the
offline URL unless the target sets one. Strings may use `{{ env_var('X', 'default') }}`
so that no password needs to sit in a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlglot.dialects.dialect import Dialect, Dialects

from fsql.errors import DefinitionError, ProjectError, did_you_mean, register_secret, scrub_secrets
from fsql.templating import TemplateRenderer
from fsql.yamlfile import Mapping, Where, load_yaml, position_of, where_node

PROJECT_FILE = "fsql_project.yml"
PROFILES_FILE = "profiles.yml"
DEFAULT_OFFLINE_URL = "duckdb:///:memory:"
# The keys each file accepts; fsql/schemas/ lists the same ones (tests/test_schemas.py).
PROJECT_KEYS = ("name", "profile", "definitions", "templates", "target-path", "dialect", "vars", "seed")
PROFILE_KEYS = ("target", "outputs")
TARGET_KEYS = ("offline", "online", "dialect", "online_schema", "settings")
EMBEDDED_ONLINE = "embedded"  # `online: embedded`: a private Postgres with its data under target/
# Where a DuckDB target spills when no `temp_directory` is set: DuckDB's own default is `.tmp`
# in whatever directory fsql was started from.
DEFAULT_TEMP_DIRECTORY = "duckdb_tmp"  # under the project's target-path
SettingValue = str | int | float | bool

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
class EngineSetting:
    """One entry of a target's `settings:` (DuckDB configuration options, as dbt-duckdb has them).

    `origin` says where it was written ("profiles.yml:9:7: target 'dev'"), for the engine's
    errors: DuckDB itself judges the name and the value when it opens.
    """

    name: str
    value: SettingValue
    origin: str


@dataclass(frozen=True, repr=False)
class Target:
    """A target of profiles.yml; its URLs hold any password, which its repr (and str) hide.

    `online_url` is a connection URL or None: an embedded online store (`online: embedded`)
    has no URL until its server runs: ask `fsql.online.embedded.online_url(config)`.
    """

    name: str
    offline_url: str
    dialect: str
    online_url: str | None = None
    online_schema: str = "fsql_online"
    online_embedded: bool = False
    settings: tuple[EngineSetting, ...] = ()

    @property
    def has_online_store(self) -> bool:
        return self.online_url is not None or self.online_embedded

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown.update(offline_url=_hidden(self.offline_url), online_url=_hidden(self.online_url))
        return f"Target({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


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
    profiles_path: Path | None = None  # the profiles.yml read; None: none found, the default target


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
        ProjectError: a file is missing, not valid YAML or wrong, or the target does not exist.
    """
    root = find_project_root(Path(project_dir))
    try:
        return _read_project(root, target=target, profiles_dir=profiles_dir, vars=vars)
    except DefinitionError as exc:  # a mistake at a line of fsql_project.yml or profiles.yml
        raise ProjectError(str(exc)) from None


def _read_project(
    root: Path, *, target: str | None, profiles_dir: Path | str | None, vars: dict[str, Any] | None
) -> ProjectConfig:
    path = root / PROJECT_FILE
    renderer = TemplateRenderer()
    document = _render_tree(load_yaml(path, shown=Path(PROJECT_FILE)), renderer, Path(PROJECT_FILE))
    name = document.get("name") if isinstance(document, dict) else None
    what = f"project '{name}'" if isinstance(name, str) else "project"
    raw = Mapping(document, path=Path(PROJECT_FILE), what=what, example="{name: my_project, dialect: duckdb}")
    raw.check_keys(PROJECT_KEYS)
    name = raw.required("name", str, hint="add 'name: my_project' (lowercase, no spaces)")
    merged_vars = dict(raw.get("vars", dict, {}))
    merged_vars.update(vars or {})
    seed = raw.get("seed", str, "")
    target_dir = root / raw.get("target-path", str, "target")
    selected = _select_target(raw.get("profile", str, name), root, target, profiles_dir, renderer)
    selected["target"] = _with_default_settings(selected["target"], root, target_dir)
    return ProjectConfig(
        name=name,
        root=root,
        definitions_dir=root / raw.get("definitions", str, "definitions"),
        templates_dir=root / raw.get("templates", str, "templates"),
        target_dir=target_dir,
        dialect=_dialect(raw, "duckdb"),
        vars=merged_vars,
        seed_script=root / seed if seed else None,
        **selected,
    )


def _with_default_settings(target: Target, root: Path, target_dir: Path) -> Target:
    """A DuckDB target spills under target/ unless it says where; a relative temp_directory is
    taken from the project root, as relative source paths are."""
    if target.dialect != "duckdb":
        return target
    settings = [
        replace(s, value=str(root / str(s.value))) if _is_relative_temp_directory(s) else s for s in target.settings
    ]
    if not any(s.name.lower() == "temp_directory" for s in settings):
        origin = f"target '{target.name}' (fsql's default temp_directory)"
        settings.append(EngineSetting("temp_directory", str(target_dir / DEFAULT_TEMP_DIRECTORY), origin))
    return replace(target, settings=tuple(settings))


def _plain_setting(value: Any) -> SettingValue | None:
    """A YAML scalar as the plain Python value DuckDB takes; None for anything else."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str) and value.strip():
        return str(value)
    return None


def _is_relative_temp_directory(setting: EngineSetting) -> bool:
    value = setting.value
    return (
        setting.name.lower() == "temp_directory"
        and isinstance(value, str)
        and bool(value)
        and not Path(value).is_absolute()
    )


def _dialect(raw: Mapping, default: str) -> str:
    """The value of 'dialect:', which must name a sqlglot dialect."""
    dialect = raw.get("dialect", str, default)
    if Dialect.get(dialect) is None:
        known = [d.value for d in Dialects if d.value]
        raise raw.error(
            "dialect",
            f"unknown dialect '{dialect}'.{did_you_mean(dialect, known)} Write a sqlglot dialect name "
            f"such as duckdb, postgres, bigquery or snowflake",
        )
    return dialect


def _select_target(
    profile: str, root: Path, wanted: str | None, profiles_dir: Path | str | None, renderer: TemplateRenderer
) -> dict[str, Any]:
    path = _find_profiles(root, profiles_dir)
    if path is None:
        if wanted not in (None, "dev"):
            raise ProjectError(
                f"target '{wanted}' requested but no {PROFILES_FILE} was found in {root} or ~/.fsql: "
                f"create one, or point --profiles-dir (or FSQL_PROFILES_DIR) at it"
            )
        return {"target": Target("dev", DEFAULT_OFFLINE_URL, "duckdb"), "targets": ("dev",)}
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    profiles = Mapping(_render_tree(load_yaml(path, shown=shown), renderer, shown), path=shown, what=PROFILES_FILE)
    if profile not in profiles.data:
        raise ProjectError(
            f"{shown}: no profile named '{profile}' (the project's 'profile', or its name)."
            f"{did_you_mean(profile, list(profiles.data))} Add a top-level '{profile}:' entry."
        )
    entry = Mapping(
        profiles.data[profile], path=shown, what=f"profile '{profile}'", where=profiles.where_value(profile)
    )
    entry.check_keys(PROFILE_KEYS)
    outputs = Mapping(
        entry.required("outputs", dict, hint="add 'outputs:' with one entry per target, e.g. dev: {offline: ...}"),
        path=shown,
        what=f"profile '{profile}' outputs",
    )
    name = wanted or entry.get("target", str, "dev")
    if name not in outputs.data:
        where = entry.where_value("target") if wanted is None and entry.has("target") else Where(shown)
        raise where.error(
            f"profile '{profile}' has no target '{name}'.{did_you_mean(name, list(outputs.data))} "
            f"Targets: {', '.join(outputs.data)}."
        )
    return {"target": _parse_target(name, outputs, shown), "targets": tuple(outputs.data), "profiles_path": path}


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
    raw.check_keys(TARGET_KEYS)
    offline = _url(raw, "offline", f"remove the key to use {DEFAULT_OFFLINE_URL}") or DEFAULT_OFFLINE_URL
    embedded = raw.has("online") and raw.data["online"] == EMBEDDED_ONLINE
    online = None if embedded else _url(raw, "online", "remove the key for a target without an online store")
    if raw.get("dialect", str, ""):
        dialect = _dialect(raw, "")
    else:
        dialect = dialect_from_url(offline, raw.where_value("offline"), what=raw.what)
    settings = _settings(raw, dialect)
    return Target(name, offline, dialect, online, raw.get("online_schema", str, "fsql_online"), embedded, settings)


def _settings(raw: Mapping, dialect: str) -> tuple[EngineSetting, ...]:
    """The target's `settings:`: DuckDB options by name, each a scalar. DuckDB checks the names
    and the values when the engine opens (its list of options moves between versions).
    `temp_directory: ''` is DuckDB's "never spill"; any other empty value is a mistake."""
    if not raw.has("settings"):
        return ()
    if dialect != "duckdb":
        raise raw.error(
            "settings",
            f"'settings' are DuckDB options, and this target runs on {dialect}: remove the key, "
            f"or set the engine's options in its own configuration",
        )
    entries = Mapping(
        raw.required("settings", dict),
        path=raw.path,
        what=f"{raw.what} settings",
        where=raw.where_value("settings"),
        example="{memory_limit: 4GB, threads: 2}",
    )
    settings = []
    for name, value in entries.data.items():
        where = entries.where_key(str(name))
        plain = "" if str(name).lower() == "temp_directory" and value == "" else _plain_setting(value)
        if plain is None:
            shown = (
                "an empty string" if isinstance(value, str) else "a mapping" if isinstance(value, dict) else "a list"
            )
            shown = "empty" if value is None else shown
            raise where.error(
                f"{raw.what}: setting '{name}' must be a string, a number or true/false, not {shown}; "
                f"e.g. memory_limit: 4GB or threads: 2"
            )
        settings.append(EngineSetting(str(name), plain, f"{where}: {raw.what}"))
    return tuple(settings)


def _url(raw: Mapping, key: str, without: str) -> str | None:
    """The connection URL under `key`, checked; None if the key is absent.

    An empty URL is an error, never "no URL": `online: "{{ env_var('X', '') }}"` with X unset
    would otherwise turn the online store off without a word.
    """
    if not raw.has(key):
        return None
    url = raw.required(key, str)
    if not url.strip():
        raise raw.error(
            key,
            f"'{key}' is empty: write a connection URL, or if it reads an environment variable "
            f"(env_var('...')), set that variable; {without}",
        )
    _check_url(url, raw, key)
    return url


def _check_url(url: str, raw: Mapping, key: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise raw.error(
            key,
            f"'{key}' is not a connection URL: '{_masked(url)}'. Write it as SQLAlchemy does, e.g. "
            f"duckdb:///path.duckdb, postgresql+psycopg://user@host:5432/db or bigquery://project",
        ) from None
    register_secret(parsed.password if isinstance(parsed.password, str) else None)


def _hidden(url: str | None) -> str | None:
    """A URL fit to show: no password, nor any other secret fsql knows of."""
    return scrub_secrets(_masked(url)) if url is not None else None


def _masked(url: str) -> str:
    """`url` with the password of `user:password@host` replaced, even when the URL does not parse."""
    head, at, host = url.rpartition("@")
    scheme, slashes, userinfo = head.rpartition("//")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{slashes}{userinfo.split(':')[0]}:*****@{host}"


def dialect_from_url(url: str, where: Where | None = None, *, what: str = "") -> str:
    backend = make_url(url).get_backend_name()
    if backend not in DIALECT_BY_BACKEND:
        message = (
            f"cannot tell the SQL dialect of '{backend}' URLs: set 'dialect:' on the target "
            f"(one of {', '.join(sorted(set(DIALECT_BY_BACKEND.values())))})"
        )
        message = f"{what}: {message}" if what else message
        raise where.error(message) if where else ProjectError(message)
    return DIALECT_BY_BACKEND[backend]


def _render_tree(node: Any, renderer: TemplateRenderer, path: Path) -> Any:
    """Render `{{ ... }}` in every string of a YAML tree, in place, keeping line info.

    A mapping or list that an alias repeats is rendered once: its values are then no
    longer templates.
    """
    return _render_node(node, renderer, path, Where(path), set())


def _render_node(node: Any, renderer: TemplateRenderer, path: Path, where: Where, seen: set[int]) -> Any:
    if isinstance(node, dict | list):
        if id(node) not in seen:
            seen.add(id(node))
            _render_children(node, renderer, path, where, seen)
    elif isinstance(node, str) and "{{" in node:
        return renderer.render_string(node, where=where)
    return node


def _render_children(
    node: dict[Any, Any] | list[Any], renderer: TemplateRenderer, path: Path, where: Where, seen: set[int]
) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            node[index] = _render_node(item, renderer, path, where, seen)
        return
    for key in list(node):
        position = position_of(node, key)
        # a key merged in by `<<: *anchor` has no line of its own: name its mapping's
        line = position[0] + 1 if position else where_node(node, path).line
        node[key] = _render_node(node[key], renderer, path, Where(path, line), seen)
