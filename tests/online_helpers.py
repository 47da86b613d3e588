"""A small project whose data a test rewrites between materializations, with a Postgres online target."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

import fsql
from fsql.build import BuildOptions
from fsql.engines.duckdb import DuckDBEngine
from fsql.online.materialize import MaterializeRequest, MaterializeResult, materialize_view

DEFINITIONS = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    path: data/stats.parquet
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {driver_id: bigint, event_ts: timestamp, created_ts: timestamp, rate: double, label: string}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    ttl: 1d
    online: true
    features:
      - {name: rate, type: double}
      - {name: label, type: string}
"""


def online_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def write_project(root: Path, dsn: str, schema: str, definitions: str = DEFINITIONS) -> Path:
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "fsql_project.yml").write_text("name: t\n")
    (root / "profiles.yml").write_text(
        f"t:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online_url(dsn)}'\n      online_schema: {schema}\n"
    )
    (root / "definitions" / "defs.yml").write_text(definitions)
    return root


def write_rows(root: Path, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (driver_id, event_ts, created_ts, rate, label); naive times are UTC."""
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    table = pa.table(
        {
            "driver_id": pa.array(columns[0], pa.int64()),
            "event_ts": pa.array(columns[1], pa.timestamp("us")),
            "created_ts": pa.array(columns[2], pa.timestamp("us")),
            "rate": pa.array(columns[3], pa.float64()),
            "label": pa.array(columns[4], pa.string()),
        }
    )
    pq.write_table(table, root / "data" / "stats.parquet")


def build(root: Path, end: datetime, **options: Any) -> Any:
    project = fsql.load_project(root)
    return project.build(BuildOptions(end=end.replace(tzinfo=end.tzinfo or UTC), **options))


def stored(dsn: str, schema: str, table: str = "driver_stats") -> dict[int, tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            f'SELECT driver_id, rate, label, feature_ts, created_ts FROM "{schema}"."{table}" ORDER BY 1'
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def state(dsn: str, schema: str, view: str = "driver_stats") -> tuple[Any, ...] | None:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            f'SELECT watermark, rows, fingerprint FROM "{schema}"."_fsql_state" WHERE view = %s', (view,)
        ).fetchone()


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 3, day, hour)


# Two entities, two views (one without a ttl) and a service reading both: a mixed lookup.
TWO_VIEWS = (
    (
        DEFINITIONS
        + """
  - name: rider_stats
    entities: [rider]
    source: riders
    online: true
    features:
      - {name: trips, type: bigint}
"""
    ).replace(
        "sources:\n",
        """  - name: rider
    join_keys: [{name: rider_id, type: bigint}]
sources:
  - name: riders
    path: data/riders.parquet
    timestamp: event_ts
    columns: {rider_id: bigint, event_ts: timestamp, trips: bigint}
""",
    )
    + """
feature_services:
  - name: both
    features: [driver_stats, rider_stats]
"""
)


def write_rider_rows(root: Path, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (rider_id, event_ts, trips); naive times are UTC."""
    columns = list(zip(*rows, strict=True)) if rows else [[], [], []]
    table = pa.table(
        {
            "rider_id": pa.array(columns[0], pa.int64()),
            "event_ts": pa.array(columns[1], pa.timestamp("us")),
            "trips": pa.array(columns[2], pa.int64()),
        }
    )
    pq.write_table(table, root / "data" / "riders.parquet")


# Test clients of server apps, open (lifespan started) until the test ends: see `serving_client`.
OPEN_CLIENTS: list[Any] = []


def serving_client(app: Any) -> Any:
    """A TestClient with the app's lifespan started, as uvicorn runs it (the lookups' async pool
    lives in it); conftest's `_close_serving_clients` ends it after the test."""
    from starlette.testclient import TestClient

    http = TestClient(app, raise_server_exceptions=False)
    OPEN_CLIENTS.append(http.__enter__())
    return http


def run_view(project: Path, end: datetime, **options: Any) -> MaterializeResult:
    """One run of `driver_stats` as `fsql build` makes it, up to `end` (naive times are UTC);
    `options` are MaterializeRequest's (start, rebuild_share, full_refresh, ...)."""
    loaded = fsql.load_project(project)
    target = loaded.config.target
    assert target.online_url is not None
    utc = {k: _utc(v) if isinstance(v, datetime) else v for k, v in options.items()}
    request = MaterializeRequest(
        loaded.definitions, "driver_stats", target.online_url, target.online_schema, end=_utc(end), **utc
    )
    engine = DuckDBEngine("duckdb:///:memory:", root=project)
    try:
        return materialize_view(request, engine, file_root=project)
    finally:
        engine.close()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
