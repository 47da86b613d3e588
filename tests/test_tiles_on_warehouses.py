"""Tiles computed by a warehouse: a build whose offline engine is Spark writes the same tiles, and so
serves the same values, as one whose offline engine is DuckDB, for every tile function; BigQuery's
tile query, transpiled to DuckDB (no BigQuery here), computes the same tiles too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from online_helpers import online_url
from pit_window import spark_session
from sqlglot import exp

from fsql.durations import Duration
from fsql.engines.duckdb import DuckDBEngine
from fsql.engines.spark import SparkEngine
from fsql.online.lookup import OnlineStore
from fsql.online.materialize import MaterializeRequest, materialize_view
from fsql.spec import (
    AggregateFunction,
    AggregateWindow,
    Aggregation,
    Column,
    Definitions,
    Entity,
    Feature,
    FeatureView,
    Source,
    SourceKind,
)

B = exp.DType
F = AggregateFunction
HOUR, DAY = Duration(1, "h"), Duration(1, "d")
T = datetime(2024, 3, 20, 12, 30, tzinfo=UTC)


def _definitions(path: Path | str, dialect: str) -> Definitions:
    key = Column("driver_id", B.BIGINT)
    columns = (key, Column("ts", B.TIMESTAMPTZ), Column("paid", B.BOOLEAN), Column("note", B.TEXT),
               Column("fare", B.DOUBLE), Column("seats", B.BIGINT))  # fmt: skip
    kind = SourceKind.FILE if isinstance(path, Path) else SourceKind.TABLE
    source = Source("trips", kind, str(path), "ts", None, columns)
    aggregations = (
        Aggregation("trips", F.COUNT, None, None, (HOUR, DAY), None),
        Aggregation("seats", F.SUM, "seats", None, (HOUR, DAY), B.BIGINT),
        Aggregation("fare_avg", F.AVG, "fare", None, (DAY,), B.DOUBLE),
        Aggregation("fare_min", F.MIN, "fare", None, (DAY,), B.DOUBLE),
        Aggregation("fare_max", F.MAX, "fare", "paid", (DAY,), B.DOUBLE),
        Aggregation("fare_sd", F.STDDEV, "fare", None, (DAY,), B.DOUBLE),
        Aggregation("notes", F.COUNT_DISTINCT, "note", None, (DAY,), B.TEXT),
        Aggregation("paid_notes", F.COUNT_DISTINCT, "note", "paid", (DAY,), B.TEXT),
        Aggregation("note", F.LAST, "note", None, (DAY,), B.TEXT),
        Aggregation("paid", F.LAST, "paid", None, (DAY,), B.BOOLEAN),
    )
    features = tuple(
        Feature(a.feature_name(w), _type(a), "", aggregate=AggregateWindow(a, w))
        for a in aggregations
        for w in a.windows
    )
    view = FeatureView("driver_trips", ("driver",), (key,), "trips", None, features, online=True,
                       aggregations=aggregations, granularity=HOUR)  # fmt: skip
    return Definitions(dialect, {"driver": Entity("driver", (key,))}, {"trips": source}, {view.name: view}, {})


def _type(aggregation: Aggregation) -> B:
    if aggregation.function in (F.COUNT, F.COUNT_DISTINCT):
        return B.BIGINT
    if aggregation.function in (F.STDDEV, F.AVG):
        return B.DOUBLE
    assert aggregation.input_type is not None
    return aggregation.input_type


def _events() -> pa.Table:
    start = T - timedelta(hours=30)
    rows = []
    for i in range(120):
        driver = 1 + i % 4
        at = start + timedelta(minutes=17 * i + driver)
        note = (None, "a", 'q"b', "a,{c}")[i % 4 if driver != 2 else 0]
        fare = None if i % 11 == 0 else 3.5 + (i * 7) % 13
        rows.append((driver, at, None if i % 9 == 0 else i % 3 == 0, note, fare, (i * 5) % 7))
    names = ("driver_id", "ts", "paid", "note", "fare", "seats")
    types = (pa.int64(), pa.timestamp("us", tz="UTC"), pa.bool_(), pa.string(), pa.float64(), pa.int64())
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


def _tiles(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(f'SELECT * FROM "{schema}".driver_trips ORDER BY 1, 2').fetchall()
        names = [c.name for c in connection.execute(f'SELECT * FROM "{schema}".driver_trips LIMIT 0').description]
    kept = [i for i, name in enumerate(names) if name != "materialized_at"]
    return [tuple(round(row[i], 9) if isinstance(row[i], float) else row[i] for i in kept) for row in rows]


@pytest.mark.spark
@pytest.mark.postgres
def test_a_spark_warehouse_writes_the_tiles_duckdb_writes(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    path = tmp_path / "trips.parquet"
    pq.write_table(_events(), path)
    url = online_url(postgres_dsn)
    spark_schema = f"{postgres_schema}_spark"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{spark_schema}"')
    try:
        spark = SparkEngine.from_session(spark_session())
        duck = DuckDBEngine("duckdb:///:memory:", root=tmp_path)
        written = {}
        for engine, schema in ((duck, postgres_schema), (spark, spark_schema)):
            definitions = _definitions(path, engine.dialect)
            done = materialize_view(MaterializeRequest(definitions, "driver_trips", url, schema, T), engine)
            written[engine.dialect] = done.rows_written
        assert written["spark"] == written["duckdb"] > 20
        assert _tiles(postgres_dsn, spark_schema) == _tiles(postgres_dsn, postgres_schema)
        entities = [{"driver_id": d} for d in (1, 2, 3, 4, 5)]
        answers = {}
        for schema, dialect in ((postgres_schema, "duckdb"), (spark_schema, "spark")):
            definitions = _definitions(path, dialect)
            with OnlineStore(url, schema=schema, definitions=definitions) as store:
                answers[dialect] = store.get_online_features(entities, features=["driver_trips"], now=T)
        assert answers["spark"] == answers["duckdb"]
        assert answers["duckdb"][0]["trips_1d"] > 0 and answers["duckdb"][4]["trips_1d"] == 0
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{spark_schema}" CASCADE')


def test_bigquery_tiles_transpiled_to_duckdb_are_duckdbs_tiles(tmp_path: Path) -> None:
    from pit_window import bigquery_table, duckdb_with_bigquery_tables, to_duckdb

    from fsql.compile.tiles import compile_tiles

    events = _events()
    path = tmp_path / "trips.parquet"
    pq.write_table(events, path)
    params = {"horizon": T - timedelta(days=3), "until": T, "from_bucket": T - timedelta(hours=20)}
    duck = compile_tiles(_definitions(path, "duckdb"), "driver_trips", dialect="duckdb")
    bigquery = compile_tiles(_definitions(bigquery_table("trips"), "bigquery"), "driver_trips", dialect="bigquery")
    assert bigquery.columns == duck.columns and bigquery.parameters == duck.parameters == set(params)
    connection = duckdb_with_bigquery_tables({"trips": events})
    try:
        connection.execute("SET TimeZone = 'UTC'")
        want = connection.execute(duck.sql, params).fetchall()
        got = connection.execute(to_duckdb(bigquery.sql), params).fetchall()
    finally:
        connection.close()
    assert len(want) > 10
    assert sorted(got, key=repr) == sorted(want, key=repr)
