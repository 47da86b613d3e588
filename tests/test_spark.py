"""Spark for real: local pyspark runs the PIT bank, the property tests and the example project.

Marked `spark` (`pytest -m "not spark"` leaves them out). One local session serves the
whole test session (tests/pit_window.py, `spark_session()`); its start costs 5-10 s.
"""

from __future__ import annotations

import itertools
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_pit_property as prop
import test_pit_rules
from hypothesis import given, settings
from hypothesis import strategies as st
from pit_harness import Feature, PitCase, PitResult, View, mismatches, run_pit, spine_table
from pit_window import SPARK_DATABASE, registered, rule_tests, run_spark, spark_session, spark_view, write_case_project

import fsql

pytestmark = pytest.mark.spark
ENGINE = "spark"

globals().update(rule_tests(test_pit_rules))


@pytest.fixture
def run(tmp_path: Path) -> Any:
    counter = itertools.count()

    def go(case: PitCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        with registered(ENGINE, run_spark):
            return run_pit(ENGINE, tmp_path / f"project{next(counter)}", case, spine, **kwargs)

    return go


# Fewer examples than on DuckDB: each one is a Spark job of a few hundred milliseconds.
SPARK_SETTINGS = settings(prop.PROPERTY_SETTINGS, max_examples=25)


def check(case: PitCase, spine: pa.Table, full_feature_names: bool) -> None:
    with registered(ENGINE, run_spark):
        prop.check_engine_against_oracle(ENGINE, case, spine, full_feature_names)


@SPARK_SETTINGS
@given(view=prop.views(0), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_one_view(view: View, spine: pa.Table, full_feature_names: bool) -> None:
    check(PitCase([view]), spine, full_feature_names)


@SPARK_SETTINGS
@given(first=prop.views(0), second=prop.views(1), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_two_views(first: View, second: View, spine: pa.Table, full_feature_names: bool) -> None:
    check(PitCase([first, second]), spine, full_feature_names)


@SPARK_SETTINGS
@given(case=prop.dense_ties())
def test_property_dense_ties(case: tuple[View, pa.Table]) -> None:
    view, spine = case
    check(PitCase([view]), spine, False)


# --- the example project on Spark, against DuckDB's ASOF ------------------------------------------


def spark_example(seeded: Path, destination: Path) -> Path:
    """The seeded example with a `spark` target; its CSV sources become Spark views.

    Parquet sources stay files (Spark reads them as parquet.`path`); Spark SQL has no
    CSV scan with a header, so each CSV file is read by DuckDB, as fsql reads it there,
    and handed to Spark as a temporary view that the definitions then name as a table.
    """
    import duckdb

    from fsql.spec import SourceKind

    root = Path(shutil.copytree(seeded, destination))
    sources = fsql.load_project(root).definitions.sources.values()
    for source in (s for s in sources if s.kind is SourceKind.FILE and s.file_format == "csv"):
        view = f"example_{source.name}"
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            spark_view(view, connection.sql(f"SELECT * FROM read_csv('{root / source.location}')").to_arrow_table())
        for path in (root / "definitions").glob("*.yml"):
            path.write_text(path.read_text().replace(f"path: {source.location}", f"table: {view}"))
    profiles = (root / "profiles.yml").read_text()
    (root / "profiles.yml").write_text(profiles + '    spark:\n      offline: "spark://local"\n')
    return root


def rows_by_request(table: pa.Table) -> dict[Any, dict[str, Any]]:
    return {row["request_id"]: row for row in table.to_pylist()}


@pytest.mark.parametrize("service", ["ride_acceptance", "driver_quality"])
def test_example_project_on_spark_equals_duckdb(seeded_example: Path, tmp_path: Path, service: str) -> None:
    root = spark_example(seeded_example, tmp_path / "example")
    spine = pq.read_table(root / "data" / "ride_requests.parquet").slice(0, 1500)
    asof = fsql.load_project(seeded_example).training_set(service=service, spine=spine)
    on_spark = fsql.load_project(root, target="spark").training_set(service=service, spine=spine)
    assert on_spark.column_names == asof.column_names
    assert on_spark.num_rows == spine.num_rows
    expected, got = rows_by_request(asof), rows_by_request(on_spark)
    assert got.keys() == expected.keys()
    for request_id, row in expected.items():
        assert same_row(got[request_id], row), (request_id, got[request_id], row)


def same_row(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal rows; floats may differ in the last bits (Spark and DuckDB sum in different orders)."""
    if got.keys() != expected.keys():
        return False
    return all(
        math.isclose(value, expected[name], rel_tol=1e-12)
        if isinstance(value, float) and isinstance(expected[name], float)
        else value == expected[name]
        for name, value in got.items()
    )


# --- pruning reaches the scan: a table partitioned by day, named catalog.db.table -------------------


def files_read(frame: Any) -> int:
    """Rows are fetched, then the parquet files the scan opened are counted (after AQE)."""
    frame.collect()
    plan = frame._jdf.queryExecution().executedPlan()
    plan = plan.finalPhysicalPlan() if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec" else plan
    total, stack = 0, [plan]
    while stack:
        node = stack.pop()
        if node.getClass().getSimpleName() == "FileSourceScanExec":
            total += int(node.metrics().apply("numFiles").value())
        stack.extend(node.children().apply(i) for i in range(node.children().size()))
    return total


def test_partition_column_prunes_day_partitions_of_a_catalog_table(tmp_path: Path) -> None:
    from test_pit_rules import DRIVER, HOUR, SPINE_TYPES, T

    from fsql.compile import Spine, compile_training_query
    from fsql.compile.spine import spine_relation

    session = spark_session()
    rows = [{"driver_id": 1 + i % 2, "event_ts": T - 7 * i * HOUR, "conv": i} for i in range(100)]
    for row in rows:
        row["ds"] = row["event_ts"].date()
    view = View("stats", (DRIVER,), {"conv": "bigint", "ds": "date"}, (Feature("conv", "bigint"),), rows, ttl="1d")
    session.sql(f"CREATE DATABASE IF NOT EXISTS {SPARK_DATABASE}")
    table = f"spark_catalog.{SPARK_DATABASE}.stats_by_day"
    session.createDataFrame(view.table()).write.mode("overwrite").partitionBy("ds").saveAsTable(table)
    case = PitCase([view])
    write_case_project(tmp_path, case, dialect="spark", table_of=lambda v: table)
    definitions = fsql.load_project(tmp_path).definitions
    source = definitions.sources[view.source_name]
    partitioned = replace(source, partition_column="ds")
    definitions = replace(definitions, sources={view.source_name: partitioned})
    spine = spine_table(
        [{"row_id": 1, "driver_id": 1, "ts": T - 30 * HOUR}, {"row_id": 2, "driver_id": 2, "ts": T}], SPINE_TYPES
    )
    spark_view("pruning_spine", spine)
    compiled = compile_training_query(
        definitions, spine=Spine(spine_relation("pruning_spine", "spark"), "ts"), dialect="spark", features=["stats"]
    )
    assert "`ds` <= CAST(" in compiled.sql
    days = session.sql(f"SELECT COUNT(DISTINCT ds) FROM {table}").collect()[0][0]
    frame = session.sql(compiled.sql)
    assert files_read(frame) <= 3 < days  # the spine spans two days, the ttl one more
    result = PitResult(frame.toArrow(), compiled.sql)
    assert not mismatches(result, case, spine), compiled.sql
    # Driver 1's latest at T-30h is i=6 (T-42h, within the 1d ttl); driver 2's at T is i=1 (T-7h).
    assert {r["row_id"]: r["conv"] for r in result.rows()} == {1: 6, 2: 1}


def test_training_set_bounds_feature_scans_by_the_measured_spine_range(tmp_path: Path) -> None:
    from test_pit_rules import DRIVER, HOUR, SPINE_TYPES, T

    rows = [{"driver_id": 1, "event_ts": T - 5 * i * HOUR, "conv": i} for i in range(20)]
    case = PitCase([View("stats", (DRIVER,), {"conv": "bigint"}, (Feature("conv", "bigint"),), rows, ttl="1d")])
    spine = spine_table(
        [{"row_id": 1, "driver_id": 1, "ts": T - 30 * HOUR}, {"row_id": 2, "driver_id": 1, "ts": T}], SPINE_TYPES
    )
    with registered(ENGINE, run_spark):
        result = run_pit(ENGINE, tmp_path / "p", case, spine)
    assert {r["row_id"]: r["conv"] for r in result.rows()} == {1: 6, 2: 0}
    ran = next((tmp_path / "p" / "target" / "run" / "spark").glob("*.sql")).read_text()
    # Constants, not subqueries over the spine: what BigQuery needs to prune partitions.
    assert "MIN(" not in ran
    assert f"<= CAST('{T.isoformat(sep=' ')}+00:00' AS TIMESTAMP)" in ran
    assert f"CAST('{(T - 30 * HOUR).isoformat(sep=' ')}+00:00' AS TIMESTAMP) - INTERVAL 1 DAY" in ran


# --- the definitions and the spine against the data -----------------------------------------------


def spark_project(tmp_path: Path) -> Path:
    from test_data_checks import write_project, write_stats

    spark_session()  # the engine joins the active session
    root = write_project(tmp_path / "p", offline="spark://local")
    write_stats(root)
    return root


def test_a_text_spine_key_against_a_bigint_key_is_refused_not_fanned_out(tmp_path: Path) -> None:
    from test_data_checks import T, spine_of

    from fsql.errors import CompileError

    project = fsql.load_project(spark_project(tmp_path))
    # Spark used to cast both sides and return each of these rows three times.
    with pytest.raises(CompileError, match="the spine's column 'driver_id' is string, but feature view 'driver_stats'"):
        project.training_set(features=["driver_stats"], spine=spine_of(pa.array(["01", "1", " 1"])))
    spine = spine_of(pa.array([7, 7, 8], pa.int32()))
    table = project.training_set(features=["driver_stats"], spine=spine)
    assert sorted((r["driver_id"], r["trips"]) for r in table.to_pylist()) == [(7, 3), (7, 3), (8, None)]
    sql = f"SELECT CAST('7' AS INT) AS driver_id, TIMESTAMP '{T}' AS event_timestamp"
    assert project.training_set(features=["driver_stats"], spine=sql).column("trips").to_pylist() == [3]


def test_a_parquet_spine_file_works_on_spark(tmp_path: Path) -> None:
    from test_data_checks import spine_of

    root = spark_project(tmp_path)
    pq.write_table(spine_of(pa.array([7, 8])), root / "spine.parquet")
    project = fsql.load_project(root)
    for path in ("spine.parquet", str(root / "spine.parquet")):  # relative to the project, or absolute
        table = project.training_set(features=["driver_stats"], spine=path)
        assert sorted((r["driver_id"], r["trips"]) for r in table.to_pylist()) == [(7, 3), (8, None)]


def test_a_source_column_holding_strings_is_refused_on_spark(tmp_path: Path) -> None:
    from test_data_checks import SPINE, write_stats

    from fsql.errors import DefinitionError

    root = spark_project(tmp_path)
    write_stats(root, trips=(pa.string(), "3"))
    expected = "source 'stats' declares column 'trips' as bigint, but file data/stats.parquet holds string there."
    with pytest.raises(DefinitionError, match=expected):
        fsql.load_project(root).training_set(features=["driver_stats"], spine=SPINE)
    with pytest.raises(DefinitionError, match=expected):
        fsql.load_project(root).validate()  # through the active session's analyser
