"""Deterministic benchmark data, generated in DuckDB SQL into parquet under benchmarks/data/.

Every value is `hash(i + salt)` of the row number, so a scale always gives the same rows
(for a given DuckDB version). Events spread over 2025 in UTC. Two feature views:

- driver_stats (driver_id): hourly snapshots with a created_ts; two rows of one driver in
  the same hour tie on (driver_id, event_ts) and the later created_ts wins.
- rider_stats (rider_id): events at microsecond resolution, no created column.

The spine asks for (rider_id, driver_id, event_timestamp) and carries a label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

DATA_DIR = Path(__file__).resolve().parent / "data"
YEAR_START = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
YEAR_SECONDS = 365 * 86_400


@dataclass(frozen=True)
class Scale:
    name: str
    spine_rows: int
    view_rows: int
    entities: int = 10_000


SCALES = {
    "small": Scale("small", 100_000, 100_000),
    "default": Scale("default", 1_000_000, 1_000_000),
    "large": Scale("large", 1_000_000, 10_000_000),
}

# rnd(i, salt, m): a pseudo-random BIGINT in [0, m). Salts are 2^40 apart: hash(i, salt)
# would combine the two hashes near-linearly and correlate the columns.
_MACRO = "CREATE OR REPLACE TEMP MACRO rnd(i, salt, m) AS (hash(i + salt * 1099511627776) % m)::BIGINT"

_SPINE = """
SELECT i AS request_id,
       rnd(i, 1, {entities}) AS rider_id,
       rnd(i, 2, {entities}) AS driver_id,
       {start} + to_seconds(rnd(i, 3, {year_s})) AS event_timestamp,
       rnd(i, 4, 2) = 1 AS accepted
FROM range({rows}) t(i)
"""

_DRIVER_STATS = """
SELECT rnd(i, 11, {entities}) AS driver_id,
       {start} + to_hours(rnd(i, 12, {year_s} // 3600)) AS event_ts,
       event_ts + to_microseconds(rnd(i, 13, 3600000000)) AS created_ts,
       rnd(i, 14, 1000000)::DOUBLE / 1e6 AS conv_rate,
       rnd(i, 15, 1000000)::DOUBLE / 1e6 AS acc_rate,
       rnd(i, 16, 50) AS avg_daily_trips
FROM range({rows}) t(i)
"""

_RIDER_STATS = """
SELECT rnd(i, 21, {entities}) AS rider_id,
       {start} + to_microseconds(rnd(i, 22, {year_s}::BIGINT * 1000000)) AS event_ts,
       rnd(i, 23, 100000)::DOUBLE / 100 AS spend_30d,
       1 + rnd(i, 24, 400)::DOUBLE / 100 AS avg_rating,
       rnd(i, 25, 200) AS trips_30d
FROM range({rows}) t(i)
"""

# The results must not depend on row order: no two rows may tie on everything they are ordered by.
_UNIQUE_CHECKS = {
    "driver_stats": "(driver_id, event_ts, created_ts)",
    "rider_stats": "(rider_id, event_ts)",
}


@dataclass(frozen=True)
class Dataset:
    scale: Scale
    spine: Path
    driver_stats: Path
    rider_stats: Path


def dataset(scale: Scale) -> Dataset:
    folder = DATA_DIR / scale.name
    return Dataset(scale, folder / "spine.parquet", folder / "driver_stats.parquet", folder / "rider_stats.parquet")


def generate(scale: Scale) -> tuple[Dataset, float]:
    """Write the scale's three parquet files (again, every time); returns them and the seconds taken."""
    data = dataset(scale)
    data.spine.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(_MACRO)
        params = {"start": YEAR_START, "year_s": YEAR_SECONDS, "entities": scale.entities}
        jobs = [
            (_SPINE, scale.spine_rows, data.spine),
            (_DRIVER_STATS, scale.view_rows, data.driver_stats),
            (_RIDER_STATS, scale.view_rows, data.rider_stats),
        ]
        for template, rows, path in jobs:
            select = template.format(rows=rows, **params)
            con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
        for name, key in _UNIQUE_CHECKS.items():
            _check_unique(con, getattr(data, name), key)
    finally:
        con.close()
    return data, time.perf_counter() - started


def _check_unique(con: duckdb.DuckDBPyConnection, path: Path, key: str) -> None:
    [(rows, distinct)] = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM '{path}'").fetchall()
    if rows != distinct:
        raise SystemExit(f"{path.name}: {rows - distinct} rows tie on {key}; results would depend on row order")


def tie_count(path: Path) -> int:
    """Rows of driver_stats that share (driver_id, event_ts) with another row."""
    sql = f"SELECT count(*) - count(DISTINCT (driver_id, event_ts)) FROM '{path}'"
    [(ties,)] = duckdb.sql(sql).fetchall()
    return int(ties)
