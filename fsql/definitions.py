"""Read the YAML definitions of a project into the typed model of `fsql.spec`.

Every YAML file under the definitions directory may hold `entities`, `sources`,
`feature_views` and `feature_services`. Reading is strict: unknown keys, duplicate names,
dangling references, unknown types and bad durations are errors at their file and line.
SQL sources are rendered with Jinja and parsed by sqlglot here, so a broken template fails
before anything runs; the columns features read are checked by `fsql.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from fsql.aggregations import read_aggregations
from fsql.checks import check_definitions, parse_source_query, query_columns
from fsql.datatests.parse import source_tests, view_tests
from fsql.datatypes import TIMESTAMP_TYPES, TYPE_NAMES, canonical_type
from fsql.derived import DerivedView, read_derived_view
from fsql.drift.parse import drift_settings
from fsql.durations import DURATION_HELP, Duration, parse_duration
from fsql.errors import ProjectError, did_you_mean
from fsql.project import ProjectConfig
from fsql.spec import (
    Aggregation,
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
from fsql.yamlfile import NAME_PATTERN, Mapping, Where, load_yaml, read_text, where_node

NAME_HELP = "use lowercase letters, digits and underscores, starting with a letter or underscore"
_COLUMN_HELP = "use letters, digits and underscores, starting with a letter or underscore"
_NAME_HINT = "add 'name: ...', a lowercase snake_case name"
SPINE_ALIAS = "spine"  # the spine's alias in generated SQL (fsql.compile.context uses the same)
_COLUMN_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Section -> what one of its items is called.
_SECTIONS = {
    "entities": "entity",
    "sources": "source",
    "feature_views": "feature view",
    "feature_services": "feature service",
    "derived_views": "derived view",
}
_SOURCE_LOCATIONS = ("table", "path", "sql", "template")
# The keys each kind of mapping accepts. fsql/schemas/definitions.schema.json lists the
# same ones, for editors; tests/test_schemas.py keeps the two in step.
SECTION_KEYS = tuple(_SECTIONS)
ENTITY_KEYS = ("name", "join_keys", "description")
JOIN_KEY_KEYS = ("name", "type", "description")
SOURCE_KEYS = (
    "name",
    "description",
    *_SOURCE_LOCATIONS,
    "timestamp",
    "created_timestamp",
    "partition_column",
    "columns",
    "tests",
)
FEATURE_VIEW_KEYS = (
    "name",
    "entities",
    "entity",
    "source",
    "ttl",
    "lateness",
    "features",
    "aggregations",
    "granularity",
    "online",
    "push",
    "tags",
    "owner",
    "description",
    "tests",
    "drift",
)
FEATURE_KEYS = ("name", "type", "expr", "description", "tests", "drift")
FEATURE_SERVICE_KEYS = ("name", "features", "full_feature_names", "description", "tags", "owner")
_SOURCE_HELP = (
    "'table' (a table name), 'path' (a parquet or CSV file), 'sql' (a query) "
    "or 'template' (a Jinja SQL file under templates/)"
)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_SPELLED_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|second|m|min|minute|h|hr|hour|d|day|w|wk|week)s?\s*$", re.I)
_FRACTIONAL_DURATION = re.compile(r"^\s*(\d*\.\d+)\s*([smhdw])\s*$")

T = TypeVar("T")


def load_definitions(config: ProjectConfig) -> Definitions:
    """Read, render, parse and check every definition file of a project.

    Raises:
        DefinitionError: a definition is wrong; the message names file:line and a fix.
    """
    if not config.definitions_dir.is_dir():
        raise ProjectError(
            f"the definitions directory {_shown(config.definitions_dir, config.root)} does not exist: "
            f"create it, or set 'definitions:' in fsql_project.yml"
        )
    files = sorted(p for p in config.definitions_dir.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    raw: dict[str, list[Mapping]] = {section: [] for section in _SECTIONS}
    for path in files:
        _read_file(path, config.root, raw)
    for section, items in raw.items():
        _check_unique(items, _SECTIONS[section])
    sources = _SourceReader(raw["sources"], config)
    definitions = Definitions(
        dialect=config.dialect,
        entities={e.name: e for e in map(_entity, raw["entities"])},
        sources={s.name: s for s in map(sources.read, raw["sources"])},
        feature_views={},
        feature_services={},
    )
    for m in raw["feature_views"]:
        view = _feature_view(m, definitions)
        definitions.feature_views[view.name] = view
    _check_unique_views(raw["feature_views"], raw["derived_views"])
    for m in raw["derived_views"]:
        derived = _derived_view(m, definitions)
        definitions.derived_views[derived.name] = derived
    for m in raw["feature_services"]:
        service = _feature_service(m, definitions)
        definitions.feature_services[service.name] = service
    check_definitions(definitions)
    return definitions


def _shown(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


def _read_file(path: Path, root: Path, raw: dict[str, list[Mapping]]) -> None:
    shown = _shown(path, root)
    text = read_text(path, shown=shown)
    document = load_yaml(path, text, shown=shown)
    if document is None:
        return
    if not isinstance(document, dict):
        raise where_node(document, shown).error(
            f"a definition file must be a mapping of sections ({', '.join(_SECTIONS)}) to lists, "
            f"e.g. 'feature_views:' followed by '- name: ...' items"
        )
    top = Mapping(document, path=shown, what="definition file", lines=tuple(text.splitlines()))
    top.check_keys(SECTION_KEYS, noun="section")
    for section, noun in _SECTIONS.items():
        raw[section].extend(top.mappings(section, noun, example="{name: ..., ...}"))


def _check_unique(items: list[Mapping], kind: str) -> None:
    first: dict[str, Mapping] = {}
    for m in items:
        name = m.data.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            raise m.where().error(
                f"{kind} '{name}' is defined twice (first at {first[name].where()}): rename or remove one"
            )
        first[name] = m


def _check_unique_views(views: list[Mapping], derived: list[Mapping]) -> None:
    """Services name views and derived views alike, so the two share one namespace."""
    names = {m.data.get("name"): m for m in views}
    for m in derived:
        other = names.get(m.data.get("name"))
        if other is not None:
            raise m.where().error(
                f"derived view '{m.data['name']}' has the name of feature view at {other.where()}: rename one"
            )


def _derived_view(m: Mapping, definitions: Definitions) -> DerivedView:
    name = _name(m)
    if name == SPINE_ALIAS:
        raise m.error("name", f"'{name}' is reserved for the spine in the SQL fsql generates: rename the view")
    _check_reserved_name(m, name)

    def features_of(text: str, where: Where) -> list[tuple[str, str, exp.DType]]:
        ref = parse_feature_ref(text, definitions, on_error=_error_at(where, m.what), derived=False)
        view = definitions.feature_views[ref.view]
        features = view.features if ref.feature is None else (view.feature(ref.feature),)
        return [(view.name, f.name, f.type) for f in features if f is not None]

    if not m.has("inputs") and not m.has("request"):
        raise m.error(None, "needs 'inputs' (features of other views, 'view:feature') or 'request' (typed fields)")
    return read_derived_view(m, name=name, features_of=features_of)


def _suggest(word: str, names: list[str], label: str) -> str:
    """' Did you mean 'x'?' if a name is close, else ' <label>: a, b, c.'"""
    return did_you_mean(word, names) or f" {label}: {', '.join(names)}."


def _name(m: Mapping, key: str = "name", *, column: str | None = None) -> str:
    """A lowercase snake_case name. `column` ("key", "feature"): the name is also a column's, so
    the message suggests no other name (it could be another column of the same source)."""
    value = m.required(key, str, hint=_NAME_HINT)
    if not NAME_PATTERN.match(value):
        if column:
            raise m.error(key, _column_name_help(value, column))
        fixed = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")
        plain = re.fullmatch(r"[A-Za-z0-9_ .-]+", value) and NAME_PATTERN.match(fixed)
        example = f", e.g. '{fixed}'" if plain else ""
        raise m.error(key, f"'{value}' is not a valid name: {NAME_HELP}{example}")
    return value


def _column_name_help(value: str, column: str) -> str:
    quoted = exp.to_identifier(value, quoted=True).sql()
    fix = (
        f"name the feature in snake_case and read the column in its expr: `{{name: <snake_case_name>, type: ..., "
        f"expr: '{quoted}'}}`"
        if column == "feature"
        else f"alias it in a SQL source, `sql: SELECT {quoted} AS <snake_case_name>, ... FROM ...`, name the key "
        f"<snake_case_name>, and alias the spine's column to it too"
    )
    return (
        f"'{value}' is not a valid name: names are lowercase snake_case ({NAME_HELP}), and fsql does not change "
        f"their case or spelling for you. To read a column named {quoted}, {fix}"
    )


def _type(m: Mapping, key: str = "type", *, what: str | None = None) -> exp.DType:
    name = m.required(key, str, hint="add 'type: ...', e.g. bigint, double, string, boolean or timestamp")
    type_ = canonical_type(name)
    if type_ is None:
        raise m.where_value(key).error(
            f"{what or m.what}: unknown type '{name}'.{did_you_mean(name.lower(), list(TYPE_NAMES))} "
            f"Known types: {', '.join(TYPE_NAMES)}."
        )
    return type_


def _entity(m: Mapping) -> Entity:
    m.check_keys(ENTITY_KEYS)
    name = _name(m)
    keys = m.mappings("join_keys", f"{m.what} join key", example="{name: customer_id, type: bigint}")
    if not keys:
        raise m.error(
            None, "needs 'join_keys': a list of {name: ..., type: ...}, e.g. [{name: driver_id, type: bigint}]"
        )
    join_keys = []
    for key in keys:
        key.check_keys(JOIN_KEY_KEYS)
        join_keys.append(Column(_name(key, column="key"), _type(key)))
    return Entity(name, tuple(join_keys), m.get("description", str, ""), m.where())


class _SourceReader:
    """Reads sources, rendering SQL templates; `source('x')` inside a template reads x first."""

    def __init__(self, mappings: list[Mapping], config: ProjectConfig) -> None:
        self.config = config
        self.by_name = {str(m.data.get("name")): m for m in mappings}
        self.done: dict[str, Source] = {}
        self.reading: list[str] = []
        self.renderer = TemplateRenderer(
            templates_dir=config.templates_dir,
            root=config.root,
            globals_={"var": make_var(config.vars), "source": self.relation_sql},
        )

    def read(self, m: Mapping) -> Source:
        name = _name(m)
        if name not in self.done:
            self.reading.append(name)
            try:
                self.done[name] = self._read(m, name)
            finally:
                self.reading.pop()
        return self.done[name]

    def relation_sql(self, name: str) -> str:
        """What `{{ source('name') }}` renders to: a relation usable after FROM."""
        if name not in self.by_name:
            raise ProjectError(
                f"source('{name}') names no source.{did_you_mean(name, list(self.by_name))} Define it, or fix the name."
            )
        if name in self.reading:
            cycle = " -> ".join([*self.reading[self.reading.index(name) :], name])
            raise ProjectError(
                f"sources read each other in a cycle ({cycle}): make one of them read a table or file "
                f"instead of source()"
            )
        source = self.read(self.by_name[name])
        return source_relation(source, self.config.dialect).sql(self.config.dialect)

    def _read(self, m: Mapping, name: str) -> Source:
        m.check_keys(SOURCE_KEYS)
        kind_key = _location_key(m)
        location = m.required(kind_key, str)
        columns = _columns(m)
        kind = SourceKind.FILE if kind_key == "path" else SourceKind.TABLE
        sql: dict[str, Any] = {}
        if kind_key == "table":
            _check_table_name(m, location, self.config.dialect)
        elif kind_key in ("sql", "template"):
            kind = SourceKind.SQL
            location, sql_where, template, raw = self._render(m, kind_key, location)
            query = parse_source_query(location, sql_where, m.what, self.config.dialect, raw=raw)
            columns = columns or query_columns(query, sql_where, m.what)
            sql = {"template": template, "sql_where": sql_where}
        source = Source(
            name=name,
            kind=kind,
            location=location,
            columns=columns,
            timestamp=_time_column(m, "timestamp", columns),
            created_timestamp=_time_column(m, "created_timestamp", columns) if m.has("created_timestamp") else None,
            partition_column=_time_column(m, "partition_column", columns) if m.has("partition_column") else None,
            description=m.get("description", str, ""),
            where=m.where(),
            **sql,
        )
        return replace(source, tests=source_tests(m, source, self.config.dialect)) if m.has("tests") else source

    def _render(self, m: Mapping, key: str, text: str) -> tuple[str, Where, str | None, str]:
        """The rendered SQL, where its text starts, the template's name, and the text before rendering."""
        if key == "sql":
            where = m.where_text(key)
            return self.renderer.render_string(text, where=where, what=m.what), where, None, text
        templates = self.config.templates_dir
        if not (templates / text).is_file():
            known = sorted(p.relative_to(templates).as_posix() for p in templates.rglob("*.sql"))
            known = [name for name in known if not name.startswith("macros/")]
            raise m.error(
                key,
                f"template '{text}' not found in {_shown(templates, self.config.root)}/."
                f"{_suggest(text, known, 'Templates') if known else ' There are no templates.'}",
            )
        shown = _shown(templates / text, self.config.root)
        raw = read_text(templates / text, shown=shown)
        sql = self.renderer.render_file(text, what=m.what, where=m.where_value(key))
        return sql, Where(shown, 1, 1, indent=1), text, raw


def source_relation(source: Source, dialect: str) -> exp.Expr:
    """The relation a source reads from, as a sqlglot expression (a table, a file scan or a subquery)."""
    if source.kind is SourceKind.TABLE:
        return exp.to_table(source.location, dialect=dialect)
    if source.kind is SourceKind.FILE:
        path = exp.Literal.string(source.location)
        scan = exp.ReadCSV(this=path) if source.file_format == "csv" else exp.ReadParquet(expressions=[path])
        return exp.Table(this=scan)
    query = sqlglot.parse_one(source.location, read=dialect)
    assert isinstance(query, exp.Query), "checked when the source was read"
    return query.subquery(exp.to_identifier(source.name, quoted=True))


def _location_key(m: Mapping) -> str:
    """Which one of table, path, sql and template the source reads."""
    given = [key for key in m.data if key in _SOURCE_LOCATIONS and m.has(key)]
    if not given:
        raise m.error(None, f"needs one of {_SOURCE_HELP}")
    if len(given) > 1:
        raise m.where_key(given[1]).error(
            f"{m.what}: has both '{given[0]}' and '{given[1]}': keep one; a source reads exactly one of {_SOURCE_HELP}"
        )
    return given[0]


def _columns(m: Mapping) -> tuple[Column, ...]:
    if not m.has("columns"):
        return ()
    raw = Mapping(
        m.data["columns"],
        path=m.path,
        what=f"{m.what}: 'columns'",
        where=m.where_value("columns"),
        example="{order_id: bigint, ordered_at: timestamp}",
    )
    columns = []
    for key in raw.data:
        if not isinstance(key, str) or not _COLUMN_PATTERN.match(key):
            raise raw.where_key(str(key)).error(f"{m.what}: '{key}' is not a valid column name: {_COLUMN_HELP}")
        columns.append(Column(key, _type(raw, key, what=f"{m.what} column '{key}'")))
    return tuple(columns)


def _time_column(m: Mapping, key: str, columns: tuple[Column, ...]) -> str:
    """A timestamp column, which must be among the source's known columns, with a time type."""
    name = m.required(key, str, hint=f"add '{key}: ...', the column holding each row's event time")
    if not _COLUMN_PATTERN.match(name):
        raise m.error(key, f"'{name}' is not a column name: {_COLUMN_HELP}")
    column = next((c for c in columns if c.name == name), None)
    names = [c.name for c in columns]
    if columns and column is None:
        raise m.error(
            key,
            f"its {key} column '{name}' is not among its columns.{_suggest(name, names, 'Its columns')}",
        )
    if column is not None and column.type is not None and column.type not in TIMESTAMP_TYPES:
        declared = m.data["columns"][name]
        raise m.error(
            key,
            f"its {key} column '{name}' is declared '{declared}': declare it as timestamp, timestamptz or date, "
            f"or pick another column",
        )
    return name


def _check_table_name(m: Mapping, table: str, dialect: str) -> None:
    try:
        parsed = sqlglot.parse_one(table, read=dialect, into=exp.Table)
        valid = parsed.sql(dialect) == exp.to_table(table, dialect=dialect).sql(dialect)
    except (ParseError, TokenError):
        valid = False
    if not valid:
        raise m.error("table", f"'{table}' is not a table name: write it as schema.table or project.dataset.table")


def _feature_view(m: Mapping, definitions: Definitions) -> FeatureView:
    m.check_keys(FEATURE_VIEW_KEYS)
    name = _name(m)
    if name == SPINE_ALIAS:
        raise m.error("name", f"'{name}' is reserved for the spine in the SQL fsql generates: rename the feature view")
    _check_reserved_name(m, name)
    entities, join_keys = _view_entities(m, definitions)
    source_name = m.required("source", str, hint="add 'source: ...', the name of the source it reads")
    source = _reference(m.where_value("source"), m.what, source_name, definitions.sources, "source")
    _check_join_keys(m, join_keys, source)
    online = m.get("online", bool, False)
    granularity = _duration(m, "granularity", "windows that end at the spine's own time")
    aggregations: tuple[Aggregation, ...] = ()
    if m.has("aggregations"):
        aggregations, features = read_aggregations(
            m, view_name=name, source=source, granularity=granularity, online=online, dialect=definitions.dialect
        )
    elif granularity is not None:
        raise m.where_key("granularity").error(
            f"{m.what}: 'granularity' applies to aggregations only: remove it, or list 'aggregations'"
        )
    else:
        features = _features(m)
    view = FeatureView(
        name=name,
        entities=tuple(entities),
        join_keys=tuple(key for key, _ in join_keys),
        source=source.name,
        ttl=_duration(m, "ttl", "no limit"),
        features=features,
        online=online,
        lateness=_duration(m, "lateness", "no late rows"),
        tags=m.string_list("tags"),
        owner=m.get("owner", str, ""),
        description=m.get("description", str, ""),
        where=m.where(),
        aggregations=aggregations,
        granularity=granularity,
        drift=drift_settings(m),
    )
    if view.online:
        _check_online_name_lengths(m, view)
    if m.get("push", bool, False):
        view = replace(view, push=_check_push(m, view))
    return replace(view, tests=view_tests(m, view, source, definitions.dialect))


# Postgres truncates longer identifiers without an error, so two long names can become one.
_MAX_IDENTIFIER_BYTES = 63


def _check_reserved_name(m: Mapping, name: str) -> None:
    if name.startswith("_fsql"):
        raise m.error(
            "name",
            f"'{name}' starts with '_fsql', which fsql reserves for the tables and columns it makes itself: "
            f"rename the feature view",
        )


def _check_push(m: Mapping, view: FeatureView) -> bool:
    """`push: true` writes rows into the online table, through the upsert `fsql build` uses."""
    if view.is_aggregate:
        raise m.error(
            "push",
            "push applies to latest-value views only: an aggregate view's online tiles are counted from its "
            "source's events, and a pushed row would be counted again by the next build; push the events into "
            "the source instead, or remove 'push'",
        )
    if not view.online:
        raise m.error("push", "push writes rows into the online table, so the view needs 'online: true'")
    return True


def _check_online_name_lengths(m: Mapping, view: FeatureView) -> None:
    """An online view's name is its Postgres table's, and its keys and features are columns: 63 bytes at most."""
    size = len(view.name.encode())
    if size > _MAX_IDENTIFIER_BYTES:
        raise m.error(
            "name",
            f"the name is {size} bytes long, and an online view's name is its Postgres table's, which holds at "
            f"most {_MAX_IDENTIFIER_BYTES} bytes (longer names are cut short and can collide): shorten the name, "
            f"or set online: false",
        )
    for column in (*(k.name for k in view.join_keys), *(f.name for f in view.features)):
        if len(column.encode()) > _MAX_IDENTIFIER_BYTES:
            raise m.error(
                "name",
                f"'{column}' is {len(column.encode())} bytes long, and in an online view it names a column of a "
                f"Postgres table, which holds at most {_MAX_IDENTIFIER_BYTES} bytes: shorten it, or set online: false",
            )


def _view_entities(m: Mapping, definitions: Definitions) -> tuple[list[str], list[tuple[Column, Where]]]:
    """The view's entities and their join keys, each key with the place of the entity it came from."""
    if m.has("entities") and m.has("entity"):
        raise m.where_key("entity").error(f"{m.what}: has both 'entities' and 'entity': keep one")
    items = m.string_items("entities" if m.has("entities") else "entity")
    if not items:
        raise m.error(None, "needs 'entities': the entities whose join keys identify a row, e.g. [driver]")
    names: list[str] = []
    join_keys: list[tuple[Column, Where]] = []
    key_owner: dict[str, str] = {}
    for entity_name, where in items:
        if entity_name in names:
            raise where.error(f"{m.what}: entity '{entity_name}' is listed twice: remove one")
        entity = _reference(where, m.what, entity_name, definitions.entities, "entity")
        for key in entity.join_keys:
            if key.name in key_owner:
                raise where.error(
                    f"{m.what}: join key '{key.name}' is in both entity '{key_owner[key.name]}' and entity "
                    f"'{entity_name}': the entities of a view need distinct join keys"
                )
            key_owner[key.name] = entity_name
            join_keys.append((key, where))
        names.append(entity_name)
    return names, join_keys


def _check_join_keys(m: Mapping, join_keys: list[tuple[Column, Where]], source: Source) -> None:
    known = [c.name for c in source.columns]
    for key, where in join_keys:
        if known and key.name not in known:
            raise where.error(
                f"{m.what}: join key '{key.name}' is not a column of source '{source.name}'."
                f"{did_you_mean(key.name, known)} Rename it in the source (e.g. in its SQL)."
            )


def _duration(m: Mapping, key: str, absent: str) -> Duration | None:
    """A duration key (`ttl`, `lateness`); `absent` says what leaving it out means."""
    if not m.has(key):
        return None
    text = m.required(key, str)
    duration = parse_duration(text)
    if duration is None:
        raise m.error(
            key,
            f"'{text}' is not a duration.{_duration_hint(text)} {DURATION_HELP[0].upper()}{DURATION_HELP[1:]}, "
            f"or leave '{key}' out for {absent}.",
        )
    return duration


def _duration_hint(text: str) -> str:
    """' Did you mean '30d'?' for '30 days' or '1.5h' (as '90m'); a word on zero and negative ones."""
    spelled = _SPELLED_DURATION.match(text)
    if spelled:
        amount = int(spelled.group(1))
        return f" Did you mean '{amount}{spelled.group(2)[0].lower()}'?" if amount else " It must be more than zero."
    if text.strip().startswith("-"):
        return " It cannot be negative."
    fractional = _FRACTIONAL_DURATION.match(text)
    if fractional:
        seconds = round(float(fractional.group(1)) * _UNIT_SECONDS[fractional.group(2)])
        unit = next((u for u, size in _UNIT_SECONDS.items() if seconds and seconds % size == 0), None)
        return f" Did you mean '{seconds // _UNIT_SECONDS[unit]}{unit}'?" if unit else ""
    return ""


def _features(m: Mapping) -> tuple[Feature, ...]:
    items = m.mappings("features", f"{m.what} feature", example="{name: amount, type: double}")
    if not items:
        raise m.error(None, "needs 'features': a list of {name: ..., type: ..., expr: ...}")
    features: dict[str, Feature] = {}
    first: dict[str, Mapping] = {}
    for item in items:
        feature = _feature(item)
        if feature.name in features:
            raise item.where_value("name").error(
                f"{m.what}: feature '{feature.name}' is defined twice (first at line "
                f"{first[feature.name].where_value('name').line}): rename or remove one"
            )
        features[feature.name], first[feature.name] = feature, item
    return tuple(features.values())


def _feature(m: Mapping) -> Feature:
    m.check_keys(FEATURE_KEYS)
    name = _name(m, column=None if m.has("expr") else "feature")
    expression_key = "expr" if m.has("expr") else "name"
    return Feature(
        name=name,
        type=_type(m),
        expression=m.required(expression_key, str),
        description=m.get("description", str, ""),
        where=m.where_text(expression_key),
        is_column=expression_key == "name",
        drift=drift_settings(m),
    )


def _reference(where: Where, what: str, name: str, known: dict[str, T], kind: str) -> T:
    if name not in known:
        raise where.error(
            f"{what}: unknown {kind} '{name}'.{did_you_mean(name, list(known))} Define it, or fix the name."
        )
    return known[name]


def _feature_service(m: Mapping, definitions: Definitions) -> FeatureService:
    m.check_keys(FEATURE_SERVICE_KEYS)
    name = _name(m)
    items = m.string_items("features")
    if not items:
        raise m.error(None, "needs 'features': a list of 'view' or 'view:feature'")
    refs: list[FeatureRef] = []
    for text, where in items:
        ref = parse_feature_ref(text, definitions, on_error=_error_at(where, m.what))
        if ref in refs:
            raise where.error(f"{m.what}: '{text}' is listed twice: remove one")
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


def _error_at(where: Where, what: str) -> Callable[[str], Exception]:
    return lambda message: where.error(f"{what}: {message}")


def parse_feature_ref(
    text: str, definitions: Definitions, *, on_error: Callable[[str], Exception], derived: bool = True
) -> FeatureRef:
    """Parse `view` or `view:feature` and check that it exists; `derived`: derived views count too."""
    view_name, _, feature_name = text.strip().partition(":")
    view: FeatureView | DerivedView | None = definitions.feature_views.get(view_name)
    if view is None and derived:
        view = definitions.derived_views.get(view_name)
    if view is None:
        known = [*definitions.feature_views, *(definitions.derived_views if derived else ())]
        hint = (
            "" if derived or view_name not in definitions.derived_views else " (a derived view reads no derived view)"
        )
        raise on_error(f"'{text}' names no feature view{hint}.{did_you_mean(view_name, known)}")
    if feature_name and view.feature(feature_name) is None:
        names = [f.name for f in view.features]
        kind = "derived view" if isinstance(view, DerivedView) else "feature view"
        raise on_error(
            f"{kind} '{view_name}' has no feature '{feature_name}'.{_suggest(feature_name, names, 'Its features')}"
        )
    return FeatureRef(view_name, feature_name or None)
