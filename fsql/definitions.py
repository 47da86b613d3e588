"""Read the YAML definitions of a project into the typed model of `fsql.spec`.

Every YAML file under the definitions directory may hold `entities`, `sources`,
`feature_views` and `feature_services`. Reading is strict: unknown keys, duplicate names,
dangling references, unknown types and bad durations are errors at their file and line.
SQL sources are rendered with Jinja and parsed by sqlglot here, so a broken template fails
before anything runs; the columns they expose are checked by `fsql.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlglot
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString
from sqlglot import exp
from sqlglot.errors import ParseError

from fsql.checks import check_definitions
from fsql.datatypes import TYPE_NAMES, canonical_type
from fsql.durations import DURATION_HELP, Duration, parse_duration
from fsql.errors import ProjectError, did_you_mean
from fsql.project import ProjectConfig
from fsql.spec import (
    Column,
    Definitions,
    Entity,
    Feature,
    FeatureRef,
    FeatureService,
    FeatureView,
    Source,
    SourceKind,
)
from fsql.templating import TemplateRenderer, make_var
from fsql.yamlfile import Mapping, Where, load_yaml

NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
NAME_HELP = "use lowercase letters, digits and underscores, starting with a letter or underscore"

_SECTIONS = ("entities", "sources", "feature_views", "feature_services")
_SOURCE_LOCATIONS = ("table", "path", "sql", "template")

T = TypeVar("T")


def load_definitions(config: ProjectConfig) -> Definitions:
    """Read, render, parse and check every definition file of a project.

    Raises:
        DefinitionError: a definition is wrong; the message names file:line and a fix.
    """
    files = sorted(p for p in config.definitions_dir.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not config.definitions_dir.is_dir():
        raise ProjectError(
            f"the definitions directory {config.definitions_dir} does not exist: create it, or set "
            f"'definitions:' in fsql_project.yml"
        )
    raw: dict[str, list[Mapping]] = {section: [] for section in _SECTIONS}
    for path in files:
        _read_file(path, config.root, raw)
    sources = _SourceReader(raw["sources"], config)
    definitions = Definitions(
        dialect=config.dialect,
        entities=_by_name((_entity(m) for m in raw["entities"]), "entity"),
        sources=_by_name((sources.read(m) for m in raw["sources"]), "source"),
        feature_views={},
        feature_services={},
    )
    views = _by_name((_feature_view(m, definitions) for m in raw["feature_views"]), "feature view")
    definitions.feature_views.update(views)
    definitions.feature_services.update(
        _by_name((_feature_service(m, definitions) for m in raw["feature_services"]), "feature service")
    )
    check_definitions(definitions)
    return definitions


def _read_file(path: Path, root: Path, raw: dict[str, list[Mapping]]) -> None:
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    document = load_yaml(path)
    if document is None:
        return
    top = Mapping(document, path=shown, what=f"definition file {shown}")
    top.check_keys(_SECTIONS)
    for section in _SECTIONS:
        singular = section.rstrip("s").replace("_", " ").replace("entitie", "entity")
        raw[section].extend(top.mappings(section, lambda m, kind=singular: _describe(kind, m)))


def _describe(kind: str, mapping: Mapping) -> str:
    name = mapping.data.get("name")
    return f"{kind} '{name}'" if isinstance(name, str) else f"{kind} at {mapping.where()}"


def _by_name(items: Any, kind: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        if item.name in result:
            first = result[item.name].where
            raise item.where.error(f"{kind} '{item.name}' is defined twice (first at {first}): rename or remove one")
        result[item.name] = item
    return result


def _name(m: Mapping, key: str = "name") -> str:
    value = m.required(key, str)
    if not NAME_PATTERN.match(value):
        raise m.error(key, f"'{value}' is not a valid name: {NAME_HELP}")
    return value


def _type(m: Mapping, key: str = "type") -> exp.DataType.Type:
    name = m.required(key, str)
    type_ = canonical_type(name)
    if type_ is None:
        raise m.error(
            key,
            f"unknown type '{name}'.{did_you_mean(name.lower(), list(TYPE_NAMES))} "
            f"Known types: {', '.join(TYPE_NAMES)}.",
        )
    return type_


def _entity(m: Mapping) -> Entity:
    m.check_keys(("name", "join_keys", "description"))
    name = _name(m)
    keys = m.mappings("join_keys", lambda k: f"entity '{name}' join key {k.data.get('name', '')!s}".rstrip())
    if not keys:
        raise m.error(
            None, "needs 'join_keys': a list of {name: ..., type: ...}, e.g. [{name: driver_id, type: bigint}]"
        )
    join_keys = []
    for key in keys:
        key.check_keys(("name", "type", "description"))
        join_keys.append(Column(_name(key), _type(key)))
    return Entity(name, tuple(join_keys), m.get("description", str, ""), m.where())


class _SourceReader:
    """Reads sources, rendering SQL templates; `source('x')` inside a template reads x first."""

    def __init__(self, mappings: list[Mapping], config: ProjectConfig) -> None:
        self.config = config
        self.by_name = {str(m.data.get("name")): m for m in mappings}
        self.done: dict[str, Source] = {}
        self.rendering: list[str] = []
        self.renderer = TemplateRenderer(
            templates_dir=config.templates_dir,
            globals_={"var": make_var(config.vars), "source": self.relation_sql},
        )

    def read(self, m: Mapping) -> Source:
        name = _name(m)
        if name not in self.done:
            self.done[name] = self._read(m, name)
        return self.done[name]

    def relation_sql(self, name: str) -> str:
        """What `{{ source('name') }}` renders to: a relation usable after FROM."""
        if name not in self.by_name:
            raise ProjectError(f"source('{name}') names no source.{did_you_mean(name, list(self.by_name))}")
        if name in self.rendering:
            raise ProjectError(f"sources refer to each other in a cycle: {' -> '.join([*self.rendering, name])}")
        self.rendering.append(name)
        try:
            source = self.read(self.by_name[name])
        finally:
            self.rendering.pop()
        return source_relation(source, self.config.dialect).sql(self.config.dialect)

    def _read(self, m: Mapping, name: str) -> Source:
        m.check_keys(("name", "description", *_SOURCE_LOCATIONS, "timestamp", "created_timestamp", "columns"))
        given = [key for key in _SOURCE_LOCATIONS if m.has(key)]
        if len(given) != 1:
            raise m.error(
                None,
                "needs exactly one of 'table' (a table name), 'path' (a parquet or CSV file), "
                f"'sql' (a query) or 'template' (a Jinja SQL file under templates/); found {given or 'none'}",
            )
        kind_key = given[0]
        location = m.required(kind_key, str)
        declared = _columns(m)
        timestamp = _column_name(m, "timestamp", required=True)
        created = _column_name(m, "created_timestamp", required=False)
        common = {
            "name": name,
            "timestamp": timestamp,
            "created_timestamp": created,
            "description": m.get("description", str, ""),
            "where": m.where(),
        }
        if kind_key == "table":
            _check_table_name(m, location, self.config.dialect)
            return Source(kind=SourceKind.TABLE, location=location, columns=declared, **common)
        if kind_key == "path":
            return Source(kind=SourceKind.FILE, location=location, columns=declared, **common)
        sql, sql_where, template = self._render(m, kind_key, location)
        query = _parse_query(sql, sql_where, m.what, self.config.dialect)
        columns = declared or _projected_columns(query, m)
        return Source(
            kind=SourceKind.SQL, location=sql, columns=columns, template=template, sql_where=sql_where, **common
        )

    def _render(self, m: Mapping, key: str, text: str) -> tuple[str, Where, str | None]:
        if key == "sql":
            where = _text_where(m, key)
            try:
                return self.renderer.render_string(text, where=str(where)), where, None
            except ProjectError as exc:
                raise m.error(key, str(exc)) from None
        template = text
        where = Where(self.config.templates_dir.relative_to(self.config.root) / template, 1, 1)
        if not (self.config.templates_dir / template).is_file():
            raise m.error(key, f"template '{template}' not found in {self.config.templates_dir.name}/")
        try:
            return self.renderer.render_file(template), where, template
        except ProjectError as exc:
            raise m.error(key, str(exc)) from None


def source_relation(source: Source, dialect: str) -> exp.Expression:
    """The relation a source reads from, as a sqlglot expression (a table, a file scan or a subquery)."""
    if source.kind is SourceKind.TABLE:
        return exp.to_table(source.location, dialect=dialect)
    if source.kind is SourceKind.FILE:
        path = exp.Literal.string(source.location)
        scan = exp.ReadCSV(this=path) if source.file_format == "csv" else exp.ReadParquet(expressions=[path])
        return exp.Table(this=scan)
    return sqlglot.parse_one(source.location, read=dialect).subquery(exp.to_identifier(source.name, quoted=True))


def _text_where(m: Mapping, key: str) -> Where:
    """Where the text of a string value starts: block scalars begin on the next line."""
    where = m.where_value(key)
    value = m.data[key]
    if isinstance(value, LiteralScalarString | FoldedScalarString) and where.line is not None:
        return Where(where.path, where.line + 1, None)
    return where


def _parse_query(sql: str, where: Where, what: str, dialect: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        line = (where.line or 1) + detail.get("line", 1) - 1
        raise Where(where.path, line).error(
            f"{what}: SQL does not parse ({detail.get('description', exc)}): fix the query"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise where.error(f"{what}: SQL must be exactly one SELECT query (no ';' or other statements)")
    return statements[0]


def _projected_columns(query: exp.Query, m: Mapping) -> tuple[Column, ...]:
    columns = []
    for projection in query.selects:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            return ()  # unknown; checks are skipped unless 'columns' is declared
        name = projection.alias_or_name
        if not name:
            raise m.error(None, f"SQL output column '{projection.sql()}' has no name: add 'AS name'")
        columns.append(Column(name, None))
    return tuple(columns)


def _columns(m: Mapping) -> tuple[Column, ...]:
    if not m.has("columns"):
        return ()
    raw = Mapping(m.data["columns"], path=m.path, what=f"{m.what} columns", where=m.where_value("columns"))
    columns = []
    for key in raw.data:
        if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise raw.where_key(str(key)).error(f"{m.what}: '{key}' is not a valid column name")
        columns.append(Column(key, _type(raw, key)))
    return tuple(columns)


def _column_name(m: Mapping, key: str, *, required: bool) -> str | None:
    if not required and not m.has(key):
        return None
    value = m.required(key, str)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
        raise m.error(key, f"'{value}' is not a column name: {NAME_HELP}")
    return value


def _check_table_name(m: Mapping, table: str, dialect: str) -> None:
    try:
        parsed = sqlglot.parse_one(table, read=dialect, into=exp.Table)
    except ParseError:
        parsed = None
    if parsed is None or parsed.sql(dialect) != exp.to_table(table, dialect=dialect).sql(dialect):
        raise m.error("table", f"'{table}' is not a table name: write it as schema.table or project.dataset.table")


def _feature_view(m: Mapping, definitions: Definitions) -> FeatureView:
    m.check_keys(("name", "entities", "entity", "source", "ttl", "features", "online", "tags", "owner", "description"))
    name = _name(m)
    entity_names = m.string_list("entities") or m.string_list("entity")
    if not entity_names:
        raise m.error(None, "needs 'entities': the entities whose join keys identify a row, e.g. [driver]")
    join_keys: list[Column] = []
    for entity_name in entity_names:
        entity = _reference(
            m, "entities" if m.has("entities") else "entity", entity_name, definitions.entities, "entity"
        )
        for key in entity.join_keys:
            if any(k.name == key.name for k in join_keys):
                raise m.error("entities", f"join key '{key.name}' appears in two of its entities: rename one")
            join_keys.append(key)
    source = _reference(m, "source", m.required("source", str), definitions.sources, "source")
    features = tuple(
        _feature(f, name) for f in m.mappings("features", lambda f: _describe(f"feature view '{name}' feature", f))
    )
    if not features:
        raise m.error(None, "needs 'features': a list of {name: ..., type: ..., expr: ...}")
    return FeatureView(
        name=name,
        entities=entity_names,
        join_keys=tuple(join_keys),
        source=source.name,
        ttl=_ttl(m),
        features=features,
        online=m.get("online", bool, False),
        tags=m.string_list("tags"),
        owner=m.get("owner", str, ""),
        description=m.get("description", str, ""),
        where=m.where(),
    )


def _ttl(m: Mapping) -> Duration | None:
    if not m.has("ttl"):
        return None
    text = m.required("ttl", str)
    duration = parse_duration(text)
    if duration is None:
        raise m.error("ttl", f"'{text}' is not a duration: {DURATION_HELP}; leave 'ttl' out for no limit")
    return duration


def _feature(m: Mapping, view: str) -> Feature:
    m.check_keys(("name", "type", "expr", "description"))
    name = _name(m)
    expression_key = "expr" if m.has("expr") else "name"
    return Feature(
        name=name,
        type=_type(m),
        expression=m.required(expression_key, str),
        description=m.get("description", str, ""),
        where=_text_where(m, expression_key),
    )


def _reference(m: Mapping, key: str, name: str, known: dict[str, T], kind: str) -> T:
    if name not in known:
        raise m.error(key, f"unknown {kind} '{name}'.{did_you_mean(name, list(known))} Define it, or fix the name.")
    return known[name]


def _feature_service(m: Mapping, definitions: Definitions) -> FeatureService:
    m.check_keys(("name", "features", "full_feature_names", "description", "tags", "owner"))
    name = _name(m)
    texts = m.string_list("features")
    if not texts:
        raise m.error(None, "needs 'features': a list of 'view' or 'view:feature'")
    refs = []
    for text in texts:
        ref = parse_feature_ref(text, definitions, on_error=lambda msg: m.error("features", msg))
        if ref in refs:
            raise m.error("features", f"'{text}' is listed twice")
        refs.append(ref)
    return FeatureService(
        name=name,
        features=tuple(refs),
        full_feature_names=m.get("full_feature_names", bool, False),
        description=m.get("description", str, ""),
        tags=m.string_list("tags"),
        owner=m.get("owner", str, ""),
        where=m.where(),
    )


def parse_feature_ref(text: str, definitions: Definitions, *, on_error: Callable[[str], Exception]) -> FeatureRef:
    """Parse `view` or `view:feature` and check that it exists."""
    view_name, _, feature_name = text.strip().partition(":")
    view = definitions.feature_views.get(view_name)
    if view is None:
        raise on_error(f"'{text}' names no feature view.{did_you_mean(view_name, list(definitions.feature_views))}")
    if feature_name and view.feature(feature_name) is None:
        raise on_error(
            f"feature view '{view_name}' has no feature '{feature_name}'."
            f"{did_you_mean(feature_name, [f.name for f in view.features])}"
        )
    return FeatureRef(view_name, feature_name or None)
