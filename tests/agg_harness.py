"""Windowed-aggregate test cases on the PIT bank's engines (tests/pit_harness.py, pit_window.py).

An `AggView` is an aggregate feature view over its own source, with its rows; an `AggCase`
holds aggregate views and (optionally) latest-value views of the PIT bank, and lays them
out exactly as a `PitCase` does, so the bank's runners (DuckDB files, Postgres tables,
BigQuery transpiled to DuckDB, Spark) run it unchanged. `agg_mismatches` compares a result
with the oracle (tests/agg_reference.py) and, for latest-value views, with the PIT oracle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from agg_reference import ReferenceAggregateView, ReferenceAggregation, accepts, reference_aggregates
from pit_harness import CREATED, EVENT, Entity, PitCase, PitResult, SpineForm, View, arrow_type, normalize
from pit_postgres import drop_schema, load_tables
from pit_reference import reference_training_set
from pit_window import _skip_spine_files, _split_request, write_case_project

import fsql

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta:
    return timedelta(**{_UNITS[text[-1]]: int(text[:-1])})


@dataclass(frozen=True)
class Agg:
    """An aggregation as written in YAML; `reference_value`/`reference_filter` are the oracle's reading."""

    name: str
    function: str
    windows: tuple[str, ...]
    expr: str | None = None
    filter: str | None = None
    type: str | None = None
    reference_value: Callable[[Mapping[str, Any]], Any] | None = None
    reference_filter: Callable[[Mapping[str, Any]], Any] | None = None

    def yaml(self) -> dict[str, Any]:
        written = {"name": self.name, "function": self.function, "windows": list(self.windows)}
        for key in ("expr", "filter", "type"):
            if getattr(self, key) is not None:
                written[key] = getattr(self, key)
        return written

    def reference(self) -> ReferenceAggregation:
        value = self.reference_value
        if value is None and (self.expr is not None or self.function != "count"):
            column = self.expr if self.expr is not None else self.name
            value = lambda row: row.get(column)  # noqa: E731
        if self.filter is not None and self.reference_filter is None:
            raise ValueError(f"aggregation {self.name}: give the filter's reference_filter")
        return ReferenceAggregation(
            self.name, self.function, tuple((w, duration(w)) for w in self.windows), value, self.reference_filter
        )


@dataclass
class AggView:
    name: str
    entities: tuple[Entity, ...]
    columns: dict[str, str]
    aggregations: tuple[Agg, ...]
    rows: list[dict[str, Any]]
    granularity: str | None = None
    created: bool = False
    event_type: str = "timestamp"
    arrow_types: dict[str, pa.DataType] = field(default_factory=dict)

    keys = View.keys
    source_name = View.source_name
    path = View.path

    def source_columns(self) -> dict[str, str]:
        columns = dict(self.keys)
        columns[EVENT] = self.event_type
        if self.created:
            columns[CREATED] = "timestamp"
        columns.update(self.columns)
        return columns

    schema = View.schema
    table = View.table

    def feature_names(self) -> list[str]:
        return [f"{a.name}_{w}" for a in self.aggregations for w in a.windows]

    def yaml(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "source": self.source_name,
            **({"granularity": self.granularity} if self.granularity else {}),
            "aggregations": [a.yaml() for a in self.aggregations],
        }

    def reference(self) -> ReferenceAggregateView:
        return ReferenceAggregateView(
            self.name,
            tuple(k for k, _ in self.keys),
            tuple(a.reference() for a in self.aggregations),
            duration(self.granularity) if self.granularity else None,
            EVENT,
            CREATED if self.created else None,
        )


@dataclass
class AggCase:
    """Aggregate views and latest-value views, laid out like a PitCase."""

    views: list[AggView | View]
    services: dict[str, list[str]] = field(default_factory=dict)

    entities = PitCase.entities

    def definitions(self, source_location: Callable[[Any], dict[str, str]]) -> dict[str, Any]:
        latest = PitCase([v for v in self.views if isinstance(v, View)], self.services)
        written = latest.definitions(source_location)
        written["entities"] = [
            {"name": e.name, "join_keys": [{"name": k, "type": t} for k, t in e.keys]} for e in self.entities()
        ]
        written["sources"] = [
            {
                "name": v.source_name,
                **source_location(v),
                "timestamp": EVENT,
                **({"created_timestamp": CREATED} if v.created else {}),
                "columns": v.source_columns(),
            }
            for v in self.views
        ]
        written["feature_views"] = [v.yaml() if isinstance(v, AggView) else _latest_yaml(v) for v in self.views]
        return written


def _latest_yaml(view: View) -> dict[str, Any]:
    return next(
        v for v in PitCase([view]).definitions(lambda _: {"table": "unused"})["feature_views"] if v["name"] == view.name
    )


def spine_table(rows: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType | str]) -> pa.Table:
    schema = pa.schema([(n, t if isinstance(t, pa.DataType) else arrow_type(t)) for n, t in types.items()])
    return pa.Table.from_pylist([{n: row.get(n) for n in schema.names} for row in rows], schema=schema)


def agg_mismatches(result: PitResult, case: AggCase, spine: pa.Table, *, spine_ts: str = "ts") -> list[str]:
    """Every spine row and feature where the engine's value is not one the oracles accept."""
    spine_rows = spine.to_pylist()
    got = result.by_id("row_id")
    problems = []
    if sorted(map(repr, got)) != sorted(repr(r["row_id"]) for r in spine_rows):
        problems.append(f"row ids differ: got {sorted(map(repr, got))}, spine has {[r['row_id'] for r in spine_rows]}")
    for view in case.views:
        if isinstance(view, AggView):
            expected = reference_aggregates(view.reference(), view.rows, spine_rows, spine_ts=spine_ts)
            for spine_row in spine_rows:
                rid = spine_row["row_id"]
                for name, allowed in expected[rid].items():
                    value = got.get(rid, {}).get(name, "<missing>")
                    if not accepts(allowed, value):
                        problems.append(f"spine row {spine_row}: {name} is {value!r}, expected one of {allowed!r}")
        else:
            latest = reference_training_set([(view.reference(), view.rows)], spine_rows, spine_ts=spine_ts)
            for spine_row in spine_rows:
                rid = spine_row["row_id"]
                values = tuple(normalize(got.get(rid, {}).get(f.name)) for f in view.features)
                allowed_rows = {tuple(normalize(v) for v in t) for t in latest[rid][view.name]}
                if values not in allowed_rows:
                    problems.append(f"spine row {spine_row}: view {view.name} gave {values}, expected {allowed_rows}")
    return problems


def postgres_runner(dsn: str) -> Callable[[Path, Any, pa.Table, SpineForm, dict[str, Any]], PitResult]:
    """The bank's Postgres runner, without its check that every view was joined by LATERAL."""
    from online_helpers import online_url

    def run(root: Path, case: Any, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]) -> PitResult:
        _skip_spine_files(spine_form)
        schema = f"fsql_agg_{uuid.uuid4().hex[:10]}"
        load_tables(dsn, schema, {v.source_name: v.table() for v in case.views})
        try:
            table_of = lambda v: f"{schema}.{v.source_name}"  # noqa: E731
            write_case_project(root, case, dialect="postgres", table_of=table_of, offline=online_url(dsn))
            project = fsql.load_project(root)
            spine_timestamp, rest = _split_request(request)
            table = project.training_set(spine=spine, spine_timestamp=spine_timestamp, **rest)
            sql = project.training_sql(spine="spine", spine_timestamp=spine_timestamp, **rest)
        finally:
            drop_schema(dsn, schema)
        return PitResult(table, sql)

    return run
