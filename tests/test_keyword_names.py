"""Features named like SQL keywords (`from`, `select`, `true`) with no `expr`: each is its
source column, offline on DuckDB and Postgres and in the online table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from online_helpers import build, online_url, t, write_project
from sqlglot import exp

import fsql
from fsql.engines.postgres import copy_arrow, create_table_sql

DEFINITIONS = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: trips
    path: data/trips.parquet
    timestamp: event_ts
feature_views:
  - name: trip_words
    entities: [driver]
    source: trips
    online: true
    features:
      - {name: from, type: string}
      - {name: select, type: double}
      - {name: "true", type: boolean}
"""
ROWS = pa.table(
    {
        "driver_id": pa.array([1, 2], pa.int64()),
        "event_ts": pa.array([t(1), t(1)], pa.timestamp("us")),
        "from": ["airport", "station"],
        "select": [1.5, 2.5],
        "true": [False, None],
    }
)
SPINE = pa.table({"driver_id": [1, 2], "event_timestamp": pa.array([t(2), t(2)], pa.timestamp("us"))})
EXPECTED = [
    {"driver_id": 1, "from": "airport", "select": 1.5, "true": False},
    {"driver_id": 2, "from": "station", "select": 2.5, "true": None},
]


def keyword_project(root: Path, dsn: str, schema: str, definitions: str = DEFINITIONS) -> Path:
    write_project(root, dsn, schema, definitions)
    pq.write_table(ROWS, root / "data" / "trips.parquet")
    return root


def training_rows(project: fsql.Project) -> list[dict[str, object]]:
    table = project.training_set(features=["trip_words"], spine=SPINE).sort_by("driver_id")
    return [{k: v for k, v in row.items() if k != "event_timestamp"} for row in table.to_pylist()]


def test_keyword_features_are_their_columns_in_duckdb_training(tmp_path: Path) -> None:
    project = fsql.load_project(keyword_project(tmp_path / "p", "postgresql://nobody@127.0.0.1:1/x", "unused"))
    project.validate()
    assert training_rows(project) == EXPECTED


def test_keyword_features_are_their_columns_in_postgres_training(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    ref = exp.Table(this=exp.to_identifier("trips", quoted=True), db=exp.to_identifier(postgres_schema, quoted=True))
    with psycopg.connect(postgres_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(create_table_sql(ref, ROWS.schema))
        copy_arrow(cursor, ref, ROWS)
    definitions = DEFINITIONS.replace("path: data/trips.parquet", f"table: {postgres_schema}.trips")
    root = keyword_project(tmp_path / "p", postgres_dsn, postgres_schema, definitions)
    profiles = (root / "profiles.yml").read_text()
    (root / "profiles.yml").write_text(profiles.replace("'duckdb:///:memory:'", f"'{online_url(postgres_dsn)}'"))
    (root / "fsql_project.yml").write_text("name: t\ndialect: postgres\n")
    assert training_rows(fsql.load_project(root)) == EXPECTED


def test_keyword_features_are_columns_of_the_online_table(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = keyword_project(tmp_path / "p", postgres_dsn, postgres_schema)
    node = build(root, t(3)).nodes[0]
    assert node.status == "success", node.message
    got = fsql.load_project(root).get_online_features([{"driver_id": 1}, {"driver_id": 2}], features=["trip_words"])
    assert got == EXPECTED
