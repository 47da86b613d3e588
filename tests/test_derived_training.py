"""The example's derived service in training on every engine that runs here: Postgres (the
lateral strategy, definitions in DuckDB SQL transpiled) and Spark (the window strategy, marked
`spark`) return DuckDB's training set, derived features and request fields from spine columns
included; a spine whose request column is NULL, zero or negative hits the guarded cases."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fsql

SERVICE = "ride_offer_scoring"


def spine_with_request_fields(root: Path) -> pa.Table:
    spine = pq.read_table(root / "data" / "ride_requests.parquet").slice(0, 1500)
    chooser = random.Random(3)
    fares = [chooser.choice([None, 0.0, -1.0, 4.5, 18.0, 60.0]) for _ in range(spine.num_rows)]
    times = spine.column("event_timestamp").to_pylist()
    eta = [
        None if i % 13 == 0 else t + timedelta(seconds=chooser.randint(-30, 900), microseconds=chooser.randint(0, 999))
        for i, t in enumerate(times)
    ]
    spine = spine.append_column("offered_fare", pa.array(fares, pa.float64()))
    spine = spine.append_column("offered_at", spine.column("event_timestamp"))
    return spine.append_column("pickup_eta_at", pa.array(eta, pa.timestamp("us")))


def assert_same(got: pa.Table, expected: pa.Table) -> None:
    assert got.column_names == expected.column_names
    by_id = {r["request_id"]: r for r in got.to_pylist()}
    assert len(by_id) == expected.num_rows
    for row in expected.to_pylist():
        other = by_id[row["request_id"]]
        for name, value in row.items():
            if isinstance(value, float) and isinstance(other[name], float):
                assert math.isclose(other[name], value, rel_tol=1e-12), (name, row, other)
            else:
                assert other[name] == value, (name, row, other)


def expected_on_duckdb(seeded: Path, spine: pa.Table) -> pa.Table:
    expected = fsql.load_project(seeded).training_set(service=SERVICE, spine=spine)
    derived = ["spend_per_trip_30d", "fare_vs_usual", "log_fare", "driver_keenness", "pickup_wait_s"]
    for name in derived:  # the bank of cases is really hit: NULLs and values
        values = expected.column(name).to_pylist()
        assert any(v is None for v in values) and any(v is not None for v in values), name
    return expected


@pytest.mark.postgres
def test_derived_training_on_postgres_equals_duckdb(seeded_example: Path, tmp_path: Path, postgres_dsn: str) -> None:
    from test_postgres_pit import drop_schema, file_sources_as_tables, postgres_example

    schema = "fsql_example_derived"
    spine = spine_with_request_fields(seeded_example)
    file_sources_as_tables(seeded_example, postgres_dsn, schema)
    try:
        root = postgres_example(seeded_example, tmp_path / "example", postgres_dsn, schema)
        got = fsql.load_project(root).training_set(service=SERVICE, spine=spine)
    finally:
        drop_schema(postgres_dsn, schema)
    assert_same(got, expected_on_duckdb(seeded_example, spine))


@pytest.mark.spark
def test_derived_training_on_spark_equals_duckdb(seeded_example: Path, tmp_path: Path) -> None:
    from test_spark import spark_example

    root = spark_example(seeded_example, tmp_path / "example")
    spine = spine_with_request_fields(root)
    got: Any = fsql.load_project(root, target="spark").training_set(service=SERVICE, spine=spine)
    assert_same(got, expected_on_duckdb(seeded_example, spine))
