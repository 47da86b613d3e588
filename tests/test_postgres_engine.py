"""The Postgres engine and the lateral strategy on a real Postgres."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pytest

from fsql.engines.postgres import PostgresEngine, conninfo
from fsql.errors import ExecutionError, ProjectError


def test_conninfo_accepts_sqlalchemy_urls() -> None:
    assert conninfo("postgresql+psycopg://app:pw@db:5433/feat") == "postgresql://app:pw@db:5433/feat"
    with pytest.raises(ProjectError, match="is not a Postgres URL"):
        conninfo("duckdb:///x.duckdb")


def test_arrow_round_trip_keeps_types_nulls_and_empty_strings(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        table = pa.table(
            {
                "id": pa.array([1, 2, None], pa.int64()),
                "name": pa.array(["", None, 'quote " and, comma\nnewline'], pa.string()),
                "score": pa.array([1.5, None, -0.25], pa.float64()),
                "flag": pa.array([True, None, False]),
                "at": pa.array([datetime(2024, 1, 1, 12, tzinfo=UTC), None, None], pa.timestamp("us", tz="UTC")),
                "naive": pa.array([datetime(2024, 1, 1, 12, 30, 0, 5), None, None], pa.timestamp("us")),
            }
        )
        engine.register_arrow("_fsql_spine", table)
        result = engine.query_arrow('SELECT * FROM "_fsql_spine" ORDER BY "id" NULLS LAST')
        assert result.schema.equals(table.schema)
        assert result.to_pylist() == table.to_pylist()
        assert engine.result_columns('SELECT * FROM "_fsql_spine" LIMIT 0') == tuple(table.column_names)
    finally:
        engine.close()


def test_a_failing_query_is_an_execution_error_naming_the_file(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        with pytest.raises(ExecutionError, match=r"relation \"nope\" does not exist \(see target/run/x.sql\)"):
            engine.query_arrow("SELECT * FROM nope", sql_path="target/run/x.sql")
    finally:
        engine.close()


def test_sessions_compare_in_utc(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("ALTER ROLE CURRENT_USER SET timezone = 'UTC'")  # harmless; the engine sets it anyway
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        result = engine.query_arrow("SELECT current_setting('TimeZone') AS tz").to_pylist()
        assert result == [{"tz": "UTC"}]
    finally:
        engine.close()


def test_a_nul_byte_in_a_spine_is_refused_naming_its_rows(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        table = pa.table({"zone_id": ["z1", "z\x002", None, "\x00"], "n": [1, 2, 3, 4]})
        expected = (
            "the spine: column 'zone_id' holds a NUL byte (\\x00) in 2 rows, which Postgres text cannot store "
            "(first: row 2, row 4)"
        )
        with pytest.raises(ExecutionError, match=f"^{re.escape(expected)}"):
            engine.register_arrow("_fsql_spine", table)
    finally:
        engine.close()
