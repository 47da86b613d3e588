"""The two sides of the training-set benchmark: fsql end to end, and a hand-written DuckDB query.

Both produce the same arrow Table: the spine's columns, then three features of
driver_stats and three of rider_stats, NULL where the latest row is older than 30 days.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa
from datagen import Dataset

import fsql

SERVICE = "ride_features"
TTL_DAYS = 30

_PROJECT = """\
name: bench
dialect: duckdb
"""

_PROFILES = """\
bench:
  target: dev
  outputs:
    dev:
      offline: "duckdb:///:memory:"
"""

_DEFINITIONS = """\
entities:
  - {{name: driver, join_keys: [{{name: driver_id, type: bigint}}]}}
  - {{name: rider, join_keys: [{{name: rider_id, type: bigint}}]}}

sources:
  - name: driver_stats
    path: {driver_stats}
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {{driver_id: bigint, event_ts: timestamptz, created_ts: timestamptz,
              conv_rate: double, acc_rate: double, avg_daily_trips: bigint}}
  - name: rider_stats
    path: {rider_stats}
    timestamp: event_ts
    columns: {{rider_id: bigint, event_ts: timestamptz, spend_30d: double, avg_rating: double, trips_30d: bigint}}

feature_views:
  - name: driver_stats
    entities: [driver]
    source: driver_stats
    ttl: {ttl}d
    features:
      - {{name: conv_rate, type: double}}
      - {{name: acc_rate, type: double}}
      - {{name: avg_daily_trips, type: bigint}}
  - name: rider_stats
    entities: [rider]
    source: rider_stats
    ttl: {ttl}d
    features:
      - {{name: spend_30d, type: double}}
      - {{name: avg_rating, type: double}}
      - {{name: trips_30d, type: bigint}}

feature_services:
  - name: {service}
    features: [driver_stats, rider_stats]
"""


def write_project(folder: Path, data: Dataset) -> Path:
    """Write a two-view fsql project for `data` into `folder`; returns the folder."""
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "fsql_project.yml").write_text(_PROJECT)
    (folder / "profiles.yml").write_text(_PROFILES)
    definitions = _DEFINITIONS.format(
        driver_stats=data.driver_stats, rider_stats=data.rider_stats, ttl=TTL_DAYS, service=SERVICE
    )
    (folder / "definitions" / "bench.yml").write_text(definitions)
    return folder


# As an expert writes it by hand: one ASOF LEFT JOIN per view straight on the files, the
# ttl applied to the matched row. The created-time tie-break comes in two forms, and the
# benchmark times both and compares fsql with the faster: which one wins depends on the
# data (dedup first wins when ties are rare, the struct pair when there are many).
HAND_SQL = """
SELECT s.*,
  CASE WHEN d.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN d.conv_rate END AS conv_rate,
  CASE WHEN d.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN d.acc_rate END AS acc_rate,
  CASE WHEN d.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN d.avg_daily_trips END AS avg_daily_trips,
  CASE WHEN r.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN r.spend_30d END AS spend_30d,
  CASE WHEN r.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN r.avg_rating END AS avg_rating,
  CASE WHEN r.event_ts >= s.event_timestamp - INTERVAL {ttl} DAY THEN r.trips_30d END AS trips_30d
FROM read_parquet('{spine}') s
{driver_join}
ASOF LEFT JOIN read_parquet('{rider_stats}') r
  ON s.rider_id = r.rider_id AND s.event_timestamp >= r.event_ts
"""

# The greatest (event_ts, created_ts) at or before the spine's time, in one ASOF pass.
DRIVER_JOIN_STRUCT = """ASOF LEFT JOIN read_parquet('{driver_stats}') d
  ON s.driver_id = d.driver_id
  AND {{e: s.event_timestamp, c: 'infinity'::TIMESTAMPTZ}} >= {{e: d.event_ts, c: d.created_ts}}"""

# One row per (driver_id, event_ts) first, the latest created_ts's values, then a plain ASOF.
DRIVER_JOIN_DEDUP = """ASOF LEFT JOIN (
    SELECT driver_id, event_ts,
      arg_max(conv_rate, created_ts) AS conv_rate,
      arg_max(acc_rate, created_ts) AS acc_rate,
      arg_max(avg_daily_trips, created_ts) AS avg_daily_trips
    FROM read_parquet('{driver_stats}')
    GROUP BY driver_id, event_ts
  ) d
  ON s.driver_id = d.driver_id AND s.event_timestamp >= d.event_ts"""

HAND_FORMS = {"hand_struct": DRIVER_JOIN_STRUCT, "hand_dedup": DRIVER_JOIN_DEDUP}


def hand_sql(data: Dataset, form: str = "hand_struct") -> str:
    """The hand-written query; `form` is a key of HAND_FORMS."""
    driver_join = HAND_FORMS[form].format(driver_stats=data.driver_stats)
    return HAND_SQL.format(ttl=TTL_DAYS, spine=data.spine, driver_join=driver_join, rider_stats=data.rider_stats)


def run_fsql(project_dir: Path, data: Dataset) -> tuple[pa.Table, float]:
    """fsql end to end: load the project, compile, run on DuckDB, return arrow."""
    started = time.perf_counter()
    table = fsql.load_project(project_dir).training_set(service=SERVICE, spine=str(data.spine))
    return table, time.perf_counter() - started


def run_sql(sql: str) -> tuple[pa.Table, float]:
    """Run SQL on a fresh DuckDB connection in UTC and materialize arrow, as fsql's engine does."""
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return table, time.perf_counter() - started
