"""The window strategy, BigQuery flavour: every PIT rule and property, on SQL transpiled to DuckDB.

The BigQuery query fsql compiles is parsed back with sqlglot's BigQuery dialect,
transpiled to DuckDB and executed there; results must be ones the oracle
(tests/pit_reference.py) accepts. This checks the window strategy's logic on the live
BigQuery path, not BigQuery itself (none is reachable here).

The rule tests are those of tests/test_pit_rules.py and the properties those of
tests/test_pit_property.py, collected here again with this module's own runner.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
import test_pit_property as prop
import test_pit_rules
from hypothesis import given
from hypothesis import strategies as st
from pit_harness import Feature, PitCase, PitResult, View, mismatches, run_pit, spine_table
from pit_window import (
    bigquery_table,
    duckdb_with_bigquery_tables,
    registered,
    rule_tests,
    run_bigquery_on_duckdb,
    to_duckdb,
    write_case_project,
)
from sqlglot import exp
from test_pit_rules import DRIVER, HOUR, SPINE_TYPES, T

import fsql
from fsql.compile import Spine, compile_training_query
from fsql.compile.spine import spine_relation

ENGINE = "bigquery-on-duckdb"

# Every rule test that runs through the `run` fixture, collected here with ours.
globals().update(rule_tests(test_pit_rules))


@pytest.fixture
def run(tmp_path: Path) -> Any:
    counter = itertools.count()

    def go(case: PitCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        with registered(ENGINE, run_bigquery_on_duckdb):
            return run_pit(ENGINE, tmp_path / f"project{next(counter)}", case, spine, **kwargs)

    return go


def check(case: PitCase, spine: pa.Table, full_feature_names: bool) -> None:
    with registered(ENGINE, run_bigquery_on_duckdb):
        prop.check_engine_against_oracle(ENGINE, case, spine, full_feature_names)


@prop.PROPERTY_SETTINGS
@given(view=prop.views(0), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_one_view(view: View, spine: pa.Table, full_feature_names: bool) -> None:
    check(PitCase([view]), spine, full_feature_names)


@prop.PROPERTY_SETTINGS
@given(first=prop.views(0), second=prop.views(1), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_two_views(first: View, second: View, spine: pa.Table, full_feature_names: bool) -> None:
    check(PitCase([first, second]), spine, full_feature_names)


@prop.PROPERTY_SETTINGS
@given(case=prop.dense_ties())
def test_property_dense_ties(case: tuple[View, pa.Table]) -> None:
    view, spine = case
    check(PitCase([view]), spine, False)


# --- the example project: BigQuery SQL, transpiled, against DuckDB's ASOF ----------------------

EXAMPLE_REQUESTS = [{"service": "ride_acceptance"}, {"service": "driver_quality"}]


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


@pytest.mark.parametrize("request_", EXAMPLE_REQUESTS, ids=lambda r: r["service"])
def test_example_project_bigquery_sql_equals_asof(seeded_example: Path, request_: dict[str, Any]) -> None:
    import duckdb
    import pyarrow.parquet as pq
    from pit_window import check_bigquery_sql

    from fsql.spec import SourceKind

    project = fsql.load_project(seeded_example)
    spine = pq.read_table(seeded_example / "data" / "ride_requests.parquet").slice(0, 2000)
    asof = project.training_set(spine=spine, **request_)
    compiled = compile_training_query(
        project.definitions,
        spine=Spine(spine_relation("spine", "bigquery"), columns=tuple(spine.column_names)),
        dialect="bigquery",
        file_root=seeded_example,
        **request_,
    )
    check_bigquery_sql(compiled.sql)
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("spine", spine)
        for source in project.definitions.sources.values():  # BigQuery reads file sources as tables of their name
            if source.kind is SourceKind.FILE:
                path = str(seeded_example / source.location)
                connection.register(source.name, connection.sql(f"SELECT * FROM '{path}'").to_arrow_table())
        window = connection.sql(to_duckdb(compiled.sql)).to_arrow_table()
    assert window.column_names == asof.column_names
    assert window.num_rows == spine.num_rows
    assert sorted_rows(window) == sorted_rows(asof)


# --- golden SQL of the window dialects parses back --------------------------------------------

GOLDEN = Path(__file__).parent / "golden"
WINDOW_GOLDEN = sorted(GOLDEN.glob("*/bigquery/*.sql")) + sorted(GOLDEN.glob("*/spark/*.sql"))


@pytest.mark.parametrize("path", WINDOW_GOLDEN, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_golden_window_sql_parses_back_in_its_dialect(path: Path) -> None:
    from pit_window import check_bigquery_sql

    dialect = path.parent.name
    if dialect == "bigquery":
        check_bigquery_sql(path.read_text())
    parsed = sqlglot.parse_one(path.read_text(), read=dialect)
    assert "window" in path.read_text().splitlines()[1]  # the header names the strategy
    assert not list(parsed.find_all(sqlglot.exp.Lateral)), "no LATERAL on a window dialect"
    assert not [j for j in parsed.find_all(sqlglot.exp.Join) if j.args.get("method")], "no ASOF join"


# --- pruning: the feature scan is bounded to [min spine ts - ttl, max spine ts] ----------------


@dataclass(frozen=True)
class MeasuredSpine(Spine):
    """A spine whose earliest and latest ts the caller measured (the `Spine.bounds` patch)."""

    bounds: tuple[datetime, datetime] | None = None


def pruning_case() -> PitCase:
    """A view with a ttl and one without, with rows far outside the spine's range on both sides."""
    stats = [{"driver_id": 1, "event_ts": T + h * HOUR, "conv": h} for h in (-50, -3, -2, -1, 0, 1, 50)]
    profile = [{"driver_id": 1, "event_ts": T + h * HOUR, "level": h} for h in (-500, -1, 2)]
    return PitCase(
        [
            View("driver_stats", (DRIVER,), {"conv": "bigint"}, (Feature("conv", "bigint"),), stats, ttl="2h"),
            View(
                "driver_profile",
                (DRIVER,),
                {"level": "bigint"},
                (Feature("level", "bigint"),),
                profile,
                event_type="timestamptz",
                arrow_types={"event_ts": pa.timestamp("us", tz="UTC")},
            ),
        ]
    )


PRUNING_SPINE = [{"row_id": 1, "driver_id": 1, "ts": T - HOUR}, {"row_id": 2, "driver_id": 1, "ts": T + HOUR}]


def compile_bigquery(root: Path, case: PitCase, spine: Spine) -> str:
    write_case_project(root, case, dialect="bigquery", table_of=lambda v: bigquery_table(v.source_name))
    definitions = fsql.load_project(root).definitions
    names = [v.name for v in case.views]
    return compile_training_query(definitions, spine=spine, dialect="bigquery", features=names).sql


def rows_cte_where(sql: str, view: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, read="bigquery")
    cte = next(c for c in parsed.find_all(exp.CTE) if c.alias == f"{view}__rows")
    return cte.this.args["where"].this


def run_transpiled(sql: str, case: PitCase, spine: pa.Table) -> PitResult:
    tables = {v.source_name: v.table() for v in case.views} | {"spine": spine}
    connection = duckdb_with_bigquery_tables(tables)
    try:
        return PitResult(connection.sql(to_duckdb(sql)).to_arrow_table(), sql)
    finally:
        connection.close()


def test_feature_scan_is_bounded_by_the_spine_at_the_source(tmp_path: Path) -> None:
    case = pruning_case()
    spine = spine_table(PRUNING_SPINE, SPINE_TYPES)
    sql = compile_bigquery(tmp_path, case, Spine(spine_relation(bigquery_table("spine"), "bigquery"), "ts"))
    latest = "(SELECT MAX(CAST(`ts` AS TIMESTAMP)) FROM `spine`)"
    earliest = "(SELECT MIN(CAST(`ts` AS TIMESTAMP)) FROM `spine`)"
    with_ttl = rows_cte_where(sql, "driver_stats").sql("bigquery")  # a naive event time: read as UTC
    assert f"CAST(`event_ts` AS TIMESTAMP) <= {latest}" in with_ttl
    assert f"CAST(`event_ts` AS TIMESTAMP) >= TIMESTAMP_SUB({earliest}, INTERVAL '2' HOUR)" in with_ttl
    without_ttl = rows_cte_where(sql, "driver_profile").sql("bigquery")  # timestamptz: compared bare
    assert f"`event_ts` <= {latest}" in without_ttl
    assert "MIN(" not in without_ttl  # no ttl, no lower bound
    result = run_transpiled(sql, case, spine)
    assert not mismatches(result, case, spine), sql
    assert {r["row_id"]: (r["conv"], r["level"]) for r in result.rows()} == {1: (-1, -1), 2: (1, -1)}


def test_measured_spine_bounds_become_literals_that_can_prune(tmp_path: Path) -> None:
    # BigQuery prunes partitions on constant filters only, not on a subquery's result.
    case = pruning_case()
    spine = spine_table(PRUNING_SPINE, SPINE_TYPES)
    relation = spine_relation(bigquery_table("spine"), "bigquery")
    sql = compile_bigquery(tmp_path, case, MeasuredSpine(relation, "ts", bounds=(T - HOUR, T + HOUR)))
    where = rows_cte_where(sql, "driver_stats")
    assert not list(where.find_all(exp.Subquery)), where.sql("bigquery")
    assert "CAST('2024-03-10 13:00:00+00:00' AS TIMESTAMP)" in where.sql("bigquery")
    assert "TIMESTAMP_SUB(CAST('2024-03-10 11:00:00+00:00' AS TIMESTAMP), INTERVAL '2' HOUR)" in where.sql("bigquery")
    result = run_transpiled(sql, case, spine)
    assert not mismatches(result, case, spine), sql
