"""Tiles computed by a Postgres offline engine (a target whose offline warehouse is Postgres):
the same states, in Postgres's own SQL, for every tile function and input type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from online_helpers import online_url
from sqlglot import exp

from fsql.durations import Duration
from fsql.engines.postgres import PostgresEngine
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

pytestmark = pytest.mark.postgres

B = exp.DType
F = AggregateFunction
DAY = Duration(1, "d")
T = datetime(2024, 3, 20, 12, 30, tzinfo=UTC)


def _definitions(schema: str) -> Definitions:
    key = Column("driver_id", B.BIGINT)
    columns = (key, Column("ts", B.TIMESTAMPTZ), Column("paid", B.BOOLEAN), Column("note", B.TEXT),
               Column("fare", B.DOUBLE))  # fmt: skip
    source = Source("trips", SourceKind.TABLE, f"{schema}.trips", "ts", None, columns)
    aggregations = (
        Aggregation("paid", F.LAST, "paid", None, (DAY,), B.BOOLEAN),
        Aggregation("note", F.LAST, "note", None, (DAY,), B.TEXT),
        Aggregation("notes", F.COUNT_DISTINCT, "note", None, (DAY,), B.TEXT),
        Aggregation("fare_sum", F.SUM, "fare", None, (DAY,), B.DOUBLE),
        Aggregation("fare_sd", F.STDDEV, "fare", None, (DAY,), B.DOUBLE),
        Aggregation("trips", F.COUNT, None, None, (DAY,), None),
    )
    features = tuple(
        Feature(a.feature_name(DAY), _type(a), "", aggregate=AggregateWindow(a, DAY)) for a in aggregations
    )
    view = FeatureView("driver_trips", ("driver",), (key,), "trips", None, features, online=True,
                       aggregations=aggregations, granularity=Duration(1, "h"))  # fmt: skip
    return Definitions("postgres", {"driver": Entity("driver", (key,))}, {"trips": source}, {view.name: view}, {})


def _type(aggregation: Aggregation) -> B:
    if aggregation.function in (F.COUNT, F.COUNT_DISTINCT):
        return B.BIGINT
    if aggregation.function is F.STDDEV:
        return B.DOUBLE
    assert aggregation.input_type is not None
    return aggregation.input_type


def test_a_postgres_warehouse_computes_the_tiles(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    start = T - timedelta(hours=5)
    rows = [
        (1, start, True, 'a"b', 10.0),
        (1, start + timedelta(minutes=70), False, "c", 12.0),
        (1, start + timedelta(minutes=130), None, 'a"b', None),
        (2, start, True, None, 3.0),
    ]
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{postgres_schema}".trips (driver_id bigint, ts timestamptz, paid boolean, note text, '
            "fare double precision)"
        )
        with connection.cursor() as cursor:
            cursor.executemany(f'INSERT INTO "{postgres_schema}".trips VALUES (%s, %s, %s, %s, %s)', rows)
    definitions = _definitions(postgres_schema)
    url = online_url(postgres_dsn)
    engine = PostgresEngine(postgres_dsn, root=tmp_path)
    done = materialize_view(MaterializeRequest(definitions, "driver_trips", url, postgres_schema, T), engine)
    assert done.rows_written == 4  # three hourly buckets of driver 1, one of driver 2
    with OnlineStore(url, schema=postgres_schema, definitions=definitions) as store:
        got = store.get_online_features([{"driver_id": 1}, {"driver_id": 2}], features=["driver_trips"], now=T)
    assert got[0] == {
        "driver_id": 1, "paid_1d": None, "note_1d": 'a"b', "notes_1d": 2, "fare_sum_1d": 22.0,
        "fare_sd_1d": pytest.approx(2 ** 0.5), "trips_1d": 3,
    }  # fmt: skip
    assert got[1] == {
        "driver_id": 2, "paid_1d": True, "note_1d": None, "notes_1d": 0, "fare_sum_1d": 3.0, "fare_sd_1d": None,
        "trips_1d": 1,
    }  # fmt: skip
