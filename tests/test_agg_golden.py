"""Golden SQL of windowed aggregates: one service mixing an aggregate and a latest-value view, per dialect.

Review a golden diff like code. `pytest --update-golden` rewrites the files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import fsql

PROJECT = Path(__file__).parent / "fixtures" / "agg_project"
GOLDEN = Path(__file__).parent / "golden" / "aggregates"
DIALECTS = ("duckdb", "postgres", "bigquery", "spark")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_aggregate_sql(dialect: str, update_golden: bool, tmp_path: Path) -> None:
    project = fsql.load_project(PROJECT, data_checks=False)  # SQL text only: no data needed
    project.config = replace(project.config, target_dir=tmp_path)
    compiled, _ = project.compile(dialect=dialect, service="rider_risk")
    path = GOLDEN / dialect / f"{compiled.name}.sql"
    if update_golden or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(compiled.sql)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {path}; review it and rerun")
    assert compiled.sql == path.read_text(), f"{path} differs: review, then rerun with --update-golden"


def test_postgres_aggregates_each_spine_row_in_a_lateral_last_included(tmp_path: Path) -> None:
    project = fsql.load_project(PROJECT, data_checks=False)
    project.config = replace(project.config, target_dir=tmp_path)
    without_last, _ = project.compile(dialect="postgres", features=["rider_trip_windows:trips_7d"])
    assert "LEFT JOIN LATERAL" in without_last.sql and "__pairs" not in without_last.sql
    assert "__windows" not in without_last.sql  # joined to the spine row itself, no DISTINCT and join back
    with_last, _ = project.compile(dialect="postgres", features=["rider_trip_windows:last_status_1d"])
    assert "LEFT JOIN LATERAL" in with_last.sql and "__pairs" not in with_last.sql
    assert "ARRAY_AGG(" in with_last.sql  # the window's latest value, in the same range scan


def test_duckdb_reads_a_view_of_only_counts_and_integer_sums_from_running_totals(tmp_path: Path) -> None:
    project = fsql.load_project(PROJECT, data_checks=False)
    project.config = replace(project.config, target_dir=tmp_path)
    exact = ["rider_trip_windows:trips_7d", "rider_trip_windows:minutes_7d"]  # a filtered count, a BIGINT sum
    only_totals, _ = project.compile(dialect="duckdb", features=exact)
    assert "__totals" in only_totals.sql and "ASOF LEFT JOIN" in only_totals.sql
    assert "__pairs" not in only_totals.sql  # no range join at all
    floats, _ = project.compile(dialect="duckdb", features=["rider_trip_windows:spend_30d"])  # a DOUBLE sum
    assert "__pairs" in floats.sql and "__totals" not in floats.sql
    mixed, _ = project.compile(dialect="duckdb", features=[*exact, "rider_trip_windows:spend_30d"])
    assert "__pairs" in mixed.sql and "__totals" not in mixed.sql  # the join is paid anyway: all from it
    for dialect in ("postgres", "bigquery", "spark"):  # running totals are DuckDB's only
        other, _ = project.compile(dialect=dialect, features=exact)
        assert "__totals" not in other.sql


def test_golden_postgres_lateral_sql(update_golden: bool, tmp_path: Path) -> None:
    """The Postgres shape without `last`: two LATERAL subqueries per spine row (ends, then aggregates)."""
    project = fsql.load_project(PROJECT, data_checks=False)
    project.config = replace(project.config, target_dir=tmp_path)
    features = ["rider_trip_windows:trips_7d", "rider_trip_windows:spend_30d", "rider_trip_windows:fare_sd_30d"]
    compiled, _ = project.compile(dialect="postgres", features=features)
    path = GOLDEN / "postgres" / "rider_trip_windows_lateral.sql"
    if update_golden or not path.exists():
        path.write_text(compiled.sql)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {path}; review it and rerun")
    assert compiled.sql == path.read_text(), f"{path} differs: review, then rerun with --update-golden"


def test_golden_duckdb_running_totals_sql(update_golden: bool, tmp_path: Path) -> None:
    """DuckDB's shape for a view asked only counts and integer sums: running totals and ASOF joins, no range join."""
    project = fsql.load_project(PROJECT, data_checks=False)
    project.config = replace(project.config, target_dir=tmp_path)
    compiled, _ = project.compile(
        dialect="duckdb",
        features=["rider_trip_windows:trips_7d", "rider_trip_windows:trips_30d", "rider_trip_windows:minutes_7d"],
    )
    path = GOLDEN / "duckdb" / "rider_trip_windows_running.sql"
    if update_golden or not path.exists():
        path.write_text(compiled.sql)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {path}; review it and rerun")
    assert compiled.sql == path.read_text(), f"{path} differs: review, then rerun with --update-golden"
