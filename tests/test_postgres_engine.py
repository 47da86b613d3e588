"""The Postgres engine and the lateral strategy on a real Postgres."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

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


# Results come through COPY ... (FORMAT csv) into pyarrow: what a text round trip could break.

_EVERY_TYPE = """
SELECT * FROM (VALUES
  (1, 7::int2, 2147483647::int4, '-9223372036854775808'::int8, 1.5::float4, 0.1::float8, 12.25::numeric, true,
   'text'::text, 'v'::varchar(3), 'c'::char(3), DATE '2024-02-29', TIMESTAMP '2024-01-01 12:30:00.5',
   TIMESTAMPTZ '2024-01-01 12:30:00.000001+02', INTERVAL '1 day', '{"a": [1, "x"]}'::json),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS t(n, i2, i4, i8, f4, f8, num, flag, txt, vc, bp, d, ts, tstz, iv, js) ORDER BY n
"""


def test_every_type_and_a_null_in_each_come_back_typed(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        result = engine.query_arrow(_EVERY_TYPE)
    finally:
        engine.close()
    assert result.schema.types == [
        pa.int32(), pa.int16(), pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.float64(), pa.bool_(),
        pa.string(), pa.string(), pa.string(), pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"),
        pa.string(), pa.string(),
    ]  # fmt: skip
    first, second = result.to_pylist()
    assert first == {
        "n": 1, "i2": 7, "i4": 2147483647, "i8": -9223372036854775808, "f4": 1.5, "f8": 0.1, "num": 12.25,
        "flag": True, "txt": "text", "vc": "v", "bp": "c  ", "d": date(2024, 2, 29),
        "ts": datetime(2024, 1, 1, 12, 30, 0, 500000), "tstz": datetime(2024, 1, 1, 10, 30, 0, 1, tzinfo=UTC),
        "iv": "1 day", "js": '{"a": [1, "x"]}',  # types without an arrow match: Postgres's own text
    }  # fmt: skip
    assert second == {name: (2 if name == "n" else None) for name in result.column_names}


def test_floats_survive_exactly_whatever_the_server_defaults(postgres_dsn: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A server whose defaults round floats and write dates day-first: the engine overrides both.
    monkeypatch.setenv("PGOPTIONS", "-c extra_float_digits=-3 -c DateStyle=SQL,DMY")
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    values = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3]
    singles = [0.1, 1.17549435e-38, 3.4028234e38, -0.0, 1 / 3]
    try:
        rows = ", ".join(f"({i}, %(d{i})s::float8, %(s{i})s::float4)" for i in range(len(values)))
        params = {**{f"d{i}": v for i, v in enumerate(values)}, **{f"s{i}": v for i, v in enumerate(singles)}}
        result = engine.query_arrow(f"SELECT * FROM (VALUES {rows}) t(i, f8, f4) ORDER BY i", params=params)
        special = engine.query_arrow("SELECT 'NaN'::float8 AS a, 'Infinity'::float8 AS b, '-Infinity'::float4 AS c")
        day = engine.query_arrow("SELECT DATE '2024-03-04' AS d").column("d").to_pylist()
    finally:
        engine.close()
    assert result.column("f8").to_pylist() == values
    assert result.column("f4").to_pylist() == pa.array(singles, pa.float32()).to_pylist()
    a, b, c = special.to_pylist()[0].values()
    assert math.isnan(a) and b == math.inf and c == -math.inf
    assert day == [date(2024, 3, 4)]


def test_timestamps_are_utc_instants_across_zones_and_centuries(postgres_dsn: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PGOPTIONS", "-c TimeZone=Asia/Kolkata")  # the server's zone: the engine's session is UTC
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        result = engine.query_arrow(
            "SELECT TIMESTAMPTZ '2024-07-01 00:00:00-07' AS summer, TIMESTAMPTZ '1899-12-31 23:59:59.999999+05:30' "
            "AS old, TIMESTAMPTZ '0001-01-01 00:00:00+00' AS first, TIMESTAMP '9999-12-31 23:59:59.123' AS last, "
            "%(at)s::timestamptz AS bound",
            params={"at": datetime(2024, 3, 1, 9, tzinfo=UTC)},
        )
    finally:
        engine.close()
    assert result.to_pylist() == [
        {
            "summer": datetime(2024, 7, 1, 7, tzinfo=UTC),
            "old": datetime(1899, 12, 31, 18, 29, 59, 999999, tzinfo=UTC),
            "first": datetime(1, 1, 1, tzinfo=UTC),
            "last": datetime(9999, 12, 31, 23, 59, 59, 123000),
            "bound": datetime(2024, 3, 1, 9, tzinfo=UTC),
        }
    ]


def test_large_and_odd_text_comes_back_as_it_was(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = 'é, "x"\r\n' * 400_000  # 3.6 MB in one value: longer than pyarrow's default block
    odd = ["", "NULL", "null", "NA", "NaN", "\\N", "t", "f", "a,b", '"', "line\nbreak", "tab\there", "\\x00", "日本 🚗"]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        engine.register_arrow("_fsql_spine", pa.table({"i": range(len(odd) + 2), "s": [*odd, big, None]}))
        result = engine.query_arrow('SELECT "s" FROM "_fsql_spine" ORDER BY "i" -- a trailing comment')
    finally:
        engine.close()
    assert result.column("s").to_pylist() == [*odd, big, None]


def test_an_empty_result_keeps_its_types(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        result = engine.query_arrow("SELECT 1::int8 AS a, now() AS b, 'x'::text AS c WHERE false")
    finally:
        engine.close()
    assert result.num_rows == 0
    assert result.schema == pa.schema([("a", pa.int64()), ("b", pa.timestamp("us", tz="UTC")), ("c", pa.string())])


def test_a_query_failing_while_its_rows_stream_is_an_execution_error(postgres_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    try:
        with pytest.raises(ExecutionError, match=r"division by zero \(see target/run/x.sql\)"):
            engine.query_arrow("SELECT 1 / (x - 3) AS y FROM generate_series(1, 5) x", sql_path="target/run/x.sql")
        with pytest.raises(ExecutionError, match="cannot hold in arrow"):
            engine.query_arrow("SELECT 'infinity'::timestamptz AS t")
        assert engine.query_arrow("SELECT 1 AS ok").to_pylist() == [{"ok": 1}]  # the connection is still usable
    finally:
        engine.close()
