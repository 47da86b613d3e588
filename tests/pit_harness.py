"""Point-in-time test cases: write a tiny fsql project, run it on an engine, read rows back.

A `PitCase` is a handful of feature views with their rows (Python dicts). `run_pit`
takes an engine name, lays the case out as a project in a directory, builds the training
set there and returns a `PitResult`, whose rows are keyed by the spine's row id column.
"duckdb" and "duckdb_narrow" (the asof strategy's narrow shape) exist today; a later engine
(Postgres, Spark) adds one entry to `ENGINES`:
a function that lays out the sources where that engine reads them (files, tables) and
runs the request, so every test of the bank runs on it unchanged.

Every file is typed explicitly (parquet with a pyarrow schema built from the declared
fsql types), so no test depends on type inference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pit_reference import ReferenceView, as_utc, reference_training_set

import fsql

EVENT = "event_ts"
CREATED = "created_ts"
BERLIN = "Europe/Berlin"

ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "int": pa.int64(),
    "double": pa.float64(),
    "float": pa.float64(),
    "string": pa.string(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}

_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def arrow_type(fsql_type: str) -> pa.DataType:
    return ARROW_TYPES[fsql_type]


def ttl_delta(ttl: str | None) -> timedelta | None:
    """'2d' -> timedelta(days=2), as fsql reads a ttl."""
    if ttl is None:
        return None
    return timedelta(**{_TTL_UNITS[ttl[-1]]: int(ttl[:-1])})


@dataclass(frozen=True)
class Entity:
    name: str
    keys: tuple[tuple[str, str], ...]  # (join key column, fsql type)


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    expr: str | None = None  # SQL over the source's columns; None: the column of the same name


@dataclass
class View:
    """A feature view over its own parquet source, with the rows of that source.

    The source has the join keys, `event_ts`, `created_ts` when `created` is set, and the
    `columns` (value columns, name -> fsql type). `arrow_types` overrides the parquet type
    of any column, e.g. `{"event_ts": pa.timestamp("us", tz="Europe/Berlin")}`.
    """

    name: str
    entities: tuple[Entity, ...]
    columns: dict[str, str]
    features: tuple[Feature, ...]
    rows: list[dict[str, Any]]
    ttl: str | None = None
    created: bool = False
    event_type: str = "timestamp"
    created_type: str = "timestamp"
    arrow_types: dict[str, pa.DataType] = field(default_factory=dict)
    # The oracle's reading of each feature whose expr is not a plain column: name -> f(row).
    reference_exprs: dict[str, Callable[[Mapping[str, Any]], Any]] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        found: dict[str, str] = {}
        for entity in self.entities:
            found.update(dict(entity.keys))
        return tuple(found.items())

    @property
    def source_name(self) -> str:
        return f"{self.name}_source"

    @property
    def path(self) -> str:
        return f"data/{self.name}.parquet"

    def source_columns(self) -> dict[str, str]:
        columns = dict(self.keys)
        columns[EVENT] = self.event_type
        if self.created:
            columns[CREATED] = self.created_type
        columns.update(self.columns)
        return columns

    def schema(self) -> pa.Schema:
        return pa.schema(
            [(name, self.arrow_types.get(name, arrow_type(kind))) for name, kind in self.source_columns().items()]
        )

    def table(self) -> pa.Table:
        names = self.schema().names
        extra = {k for row in self.rows for k in row} - set(names)
        if extra:
            raise ValueError(f"view {self.name}: rows have undeclared columns {sorted(extra)}")
        return pa.Table.from_pylist([{n: row.get(n) for n in names} for row in self.rows], schema=self.schema())

    def reference(self) -> ReferenceView:
        features: list[str | tuple[str, Any]] = []
        for f in self.features:
            if f.name in self.reference_exprs:
                features.append((f.name, self.reference_exprs[f.name]))
            elif f.expr is None:
                features.append(f.name)
            else:
                raise ValueError(f"view {self.name}: feature {f.name} has expr {f.expr!r}: give its reference_exprs")
        return ReferenceView(
            name=self.name,
            keys=tuple(k for k, _ in self.keys),
            features=tuple(features),
            ttl=ttl_delta(self.ttl),
            event=EVENT,
            created=CREATED if self.created else None,
        )


@dataclass
class PitCase:
    views: list[View]
    services: dict[str, list[str]] = field(default_factory=dict)  # service name -> feature refs

    def entities(self) -> list[Entity]:
        found: dict[str, Entity] = {}
        for view in self.views:
            for entity in view.entities:
                if found.setdefault(entity.name, entity) != entity:
                    raise ValueError(f"entity {entity.name} is defined twice, differently")
        return list(found.values())

    def definitions(self, source_location: Callable[[View], dict[str, str]]) -> dict[str, Any]:
        """The definitions YAML (as data); `source_location` says where each view's rows live."""
        return {
            "entities": [
                {"name": e.name, "join_keys": [{"name": k, "type": t} for k, t in e.keys]} for e in self.entities()
            ],
            "sources": [
                {
                    "name": v.source_name,
                    **source_location(v),
                    "timestamp": EVENT,
                    **({"created_timestamp": CREATED} if v.created else {}),
                    "columns": v.source_columns(),
                }
                for v in self.views
            ],
            "feature_views": [
                {
                    "name": v.name,
                    "entities": [e.name for e in v.entities],
                    "source": v.source_name,
                    **({"ttl": v.ttl} if v.ttl else {}),
                    "features": [
                        {"name": f.name, "type": f.type, **({"expr": f.expr} if f.expr else {})} for f in v.features
                    ],
                }
                for v in self.views
            ],
            **(
                {"feature_services": [{"name": n, "features": refs} for n, refs in self.services.items()]}
                if self.services
                else {}
            ),
        }

    def reference(self, spine: Iterable[Mapping[str, Any]], *, spine_ts: str, row_id: str = "row_id") -> Any:
        """The oracle's acceptable feature tuples: {row id: {view name: {tuple, ...}}}."""
        views = [(v.reference(), v.rows) for v in self.views]
        return reference_training_set(views, list(spine), spine_ts=spine_ts, row_id=row_id)


def spine_table(rows: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType | str]) -> pa.Table:
    """A spine with an explicit schema; a type may be a pyarrow type or an fsql type name."""
    schema = pa.schema([(n, t if isinstance(t, pa.DataType) else arrow_type(t)) for n, t in types.items()])
    return pa.Table.from_pylist([{n: row.get(n) for n in schema.names} for row in rows], schema=schema)


@dataclass
class PitResult:
    table: pa.Table
    sql: str  # the training SQL of the request, for bug reports

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def by_id(self, row_id: str = "row_id") -> dict[Hashable, dict[str, Any]]:
        """The output rows keyed by the spine's row id (which must be unique)."""
        result: dict[Hashable, dict[str, Any]] = {}
        for row in self.rows():
            if row[row_id] in result:
                raise AssertionError(f"spine row {row[row_id]!r} gave more than one output row")
            result[row[row_id]] = row
        return result

    def value(self, row_id: Hashable, column: str, *, row_id_column: str = "row_id") -> Any:
        return self.by_id(row_id_column)[row_id][column]


def _write_yaml(path: Path, data: Any) -> None:
    # JSON is YAML; one object per line keeps the file readable when a test fails.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_project(root: Path, case: PitCase, source_location: Callable[[View], dict[str, str]]) -> Path:
    """fsql_project.yml and definitions/defs.yml for a case; the caller writes the sources' rows."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "fsql_project.yml").write_text("name: t\ndialect: duckdb\n")
    _write_yaml(root / "definitions" / "defs.yml", case.definitions(source_location))
    return root


SpineForm = str  # "arrow", "pandas", "parquet" or "sql"
SPINE_FORMS: tuple[SpineForm, ...] = ("arrow", "pandas", "parquet", "sql")


def _run_duckdb(
    root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]
) -> PitResult:
    for view in case.views:
        path = root / view.path
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(view.table(), path)
    write_project(root, case, lambda v: {"path": v.path})
    project = fsql.load_project(root)
    spine_path = root / "spine.parquet"
    if spine_form == "arrow":
        given: Any = spine
    elif spine_form == "pandas":
        given = spine.to_pandas()
    elif spine_form in ("parquet", "sql"):
        pq.write_table(spine, spine_path)
        columns = ", ".join(f'"{name}"' for name in spine.column_names)
        given = str(spine_path) if spine_form == "parquet" else f"SELECT {columns} FROM read_parquet('{spine_path}')"
    else:
        raise ValueError(f"unknown spine form {spine_form!r}; known: {', '.join(SPINE_FORMS)}")
    sql_request = {k: v for k, v in request.items() if k != "spine_timestamp"}
    sql = project.training_sql(spine="spine", spine_timestamp=request.get("spine_timestamp", "ts"), **sql_request)
    return PitResult(project.training_set(spine=given, **request), sql)


def _run_duckdb_narrow(
    root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]
) -> PitResult:
    """DuckDB with the narrow asof shape (views matched to the numbered spine, stitched back by row id)
    from one view on, so every case of the bank also runs the shape that many-view services get."""
    from fsql.compile.asof import AsofStrategy

    before = AsofStrategy.narrow_from_carried
    AsofStrategy.narrow_from_carried = 0
    try:
        result = _run_duckdb(root, case, spine, spine_form, request)
    finally:
        AsofStrategy.narrow_from_carried = before
    assert "_fsql_spine_row" in result.sql, "the narrow shape was not used"
    return result


# Engine name -> runner(project dir, case, spine, spine form, request kwargs).
ENGINES: dict[str, Callable[[Path, PitCase, pa.Table, SpineForm, dict[str, Any]], PitResult]] = {
    "duckdb": _run_duckdb,
    "duckdb_narrow": _run_duckdb_narrow,
}


def run_pit(
    engine: str,
    root: Path,
    case: PitCase,
    spine: pa.Table,
    *,
    spine_form: SpineForm = "arrow",
    spine_timestamp: str = "ts",
    features: Sequence[str] | None = None,
    service: str | None = None,
    full_feature_names: bool | None = None,
) -> PitResult:
    """Lay `case` out as a project in `root` (an empty directory), and build the training set there.

    Without `features` or `service`, every feature of every view of the case is asked for.
    """
    if engine not in ENGINES:
        raise ValueError(f"no PIT runner for engine {engine!r}; known: {', '.join(ENGINES)}")
    if features is None and service is None:
        features = [v.name for v in case.views]
    request: dict[str, Any] = {"spine_timestamp": spine_timestamp}
    if service is not None:
        request["service"] = service
    else:
        request["features"] = list(features or ())
    if full_feature_names is not None:
        request["full_feature_names"] = full_feature_names
    return ENGINES[engine](root, case, spine, spine_form, request)


def normalize(value: Any) -> Any:
    """One comparable form per value: timestamps as UTC instants."""
    if isinstance(value, datetime):
        return as_utc(value)
    return value


def mismatches(
    result: PitResult,
    case: PitCase,
    spine: pa.Table,
    *,
    spine_ts: str = "ts",
    row_id: str = "row_id",
    full_feature_names: bool = False,
) -> list[str]:
    """Every spine row and view where the engine's features are not among the oracle's."""
    spine_rows = spine.to_pylist()
    expected = case.reference(spine_rows, spine_ts=spine_ts, row_id=row_id)
    got = result.by_id(row_id)
    problems = []
    if set(got) != set(expected):
        problems.append(f"row ids differ: got {sorted(map(repr, got))}, spine has {sorted(map(repr, expected))}")
    for spine_row in spine_rows:
        rid = spine_row[row_id]
        if rid not in got:
            continue
        for view in case.views:
            names = [f"{view.name}__{f.name}" if full_feature_names else f.name for f in view.features]
            values = tuple(normalize(got[rid][n]) for n in names)
            allowed = {tuple(normalize(v) for v in t) for t in expected[rid][view.name]}
            if values not in allowed:
                problems.append(
                    f"spine row {spine_row}: view {view.name} gave {dict(zip(names, values, strict=True))}, "
                    f"acceptable: {sorted(allowed, key=repr)}"
                )
    return problems
