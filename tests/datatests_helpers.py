"""A small project for data tests: one source with planted defects, one view, each kind of test.

The rows (driver_id, event_ts, created_ts, rate, label):
  (1, h1, h1, 0.5, a), (1, h1, h1, 0.7, b)   same (driver_id, event_ts, created_ts): not unique
  (2, h2, h2, NULL, c)                        a NULL rate
  (3, h3, h3, 1.5, z)                         rate out of [0, 1], label not accepted
  (NULL, h4, NULL, 0.1, a)                    a NULL key: in the source, never in the view's rows
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2024, 3, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return START + timedelta(hours=hours)


ROWS: list[tuple[Any, ...]] = [
    (1, h(1), h(1), 0.5, "a"),
    (1, h(1), h(1), 0.7, "b"),
    (2, h(2), h(2), None, "c"),
    (3, h(3), h(3), 1.5, "z"),
    (None, h(4), None, 0.1, "a"),
]

# test name -> (status, failures) with the data above, freshness measured at AT.
AT = h(4) + timedelta(hours=3)
TESTS_YAML = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    LOCATION
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {driver_id: bigint, event_ts: timestamptz, created_ts: timestamptz, rate: double, label: string}
    tests:
      - {not_null: driver_id}
      - {not_null: [event_ts]}
      - {unique: [driver_id, event_ts, created_ts]}
      - {unique: [driver_id, label]}
      - {accepted_values: {column: label, values: [a, b, c, z]}}
      - {accepted_range: {column: rate, min: 0.1, max: 1.5, inclusive: false}}
      - {accepted_range: {column: rate, min: 0.1, max: 1.5}}
      - {row_count: {min: 5}}
      - {row_count: {min_rows: 6}, severity: warn}
      - {freshness: {warn_after: 2h, error_after: 1d}}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    online: true
    features:
      - name: rate
        type: double
        tests:
          - {accepted_range: {min: 0, max: 1}}
          - {accepted_range: {min: 0, max: 1.5}}
          - {accepted_range: {min: 0.1, max: 1.5, inclusive: false}}
          - {not_null: {severity: warn}}
      - name: label
        type: string
        tests: [{accepted_values: [a, b, c]}, unique]
    tests:
      - {row_count: {max: 3}}
      - {expression: "rate <= 1"}
      - {expression_is_true: {expression: "rate >= 0 AND label <> 'q'"}}
      - {freshness: {warn_after: 4h}}
"""

EXPECTED = {
    "not_null_stats_driver_id": ("fail", 1),
    "not_null_stats_event_ts": ("pass", 0),
    "unique_stats_driver_id_event_ts_created_ts": ("fail", 1),
    "unique_stats_driver_id_label": ("pass", 0),
    "accepted_values_stats_label": ("pass", 0),
    "accepted_range_stats_rate": ("fail", 2),  # 0.1 and 1.5 are the bounds, excluded
    "accepted_range_stats_rate_2": ("pass", 0),  # and included
    "row_count_stats": ("pass", 0),
    "row_count_stats_2": ("warn", 1),
    "freshness_stats": ("warn", 1),  # 3h old: past warn_after 2h, not error_after 1d
    "accepted_range_driver_stats_rate": ("fail", 1),  # 1.5; the NULL is not a failure
    "accepted_range_driver_stats_rate_2": ("pass", 0),
    "accepted_range_driver_stats_rate_3": ("fail", 1),  # 1.5, the excluded max
    "not_null_driver_stats_rate": ("warn", 1),
    "accepted_values_driver_stats_label": ("fail", 1),
    "unique_driver_stats_label": ("pass", 0),
    "row_count_driver_stats": ("fail", 1),  # 4 rows in the view (the NULL key never reaches it)
    "expression_driver_stats": ("fail", 1),
    "expression_driver_stats_2": ("pass", 0),
    "freshness_driver_stats": ("pass", 0),  # the view's newest row is h3: 4h old, not past 4h
}


def table(rows: list[tuple[Any, ...]] = ROWS) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "driver_id": pa.array(columns[0], pa.int64()),
            "event_ts": pa.array(columns[1], pa.timestamp("us", tz="UTC")),
            "created_ts": pa.array(columns[2], pa.timestamp("us", tz="UTC")),
            "rate": pa.array(columns[3], pa.float64()),
            "label": pa.array(columns[4], pa.string()),
        }
    )


def write_project(
    root: Path,
    *,
    definitions: str = TESTS_YAML,
    location: str = "path: data/stats.parquet",
    profile: str | None = None,
    rows: list[tuple[Any, ...]] = ROWS,
) -> Path:
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "fsql_project.yml").write_text("name: t\n")
    if profile is not None:
        (root / "profiles.yml").write_text(profile)
    (root / "definitions" / "defs.yml").write_text(definitions.replace("LOCATION", location))
    pq.write_table(table(rows), root / "data" / "stats.parquet")
    return root


def online_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def load_postgres_table(dsn: str, schema: str, name: str, data: pa.Table) -> None:
    """The rows as a Postgres table `schema.name` (the offline source of a Postgres target)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{schema}"."{name}" (driver_id BIGINT, event_ts TIMESTAMPTZ, created_ts TIMESTAMPTZ, '
            f"rate DOUBLE PRECISION, label TEXT)"
        )
        with connection.cursor() as cursor, cursor.copy(f'COPY "{schema}"."{name}" FROM STDIN') as copy:
            for row in data.to_pylist():
                copy.write_row(list(row.values()))
