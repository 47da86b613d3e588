"""The sides of the windowed-aggregates benchmark: data, fsql, three hand-written DuckDB shapes, pandas.

Every side returns an arrow Table with the spine's columns (row_id, user_id, event_timestamp)
and the 16 features `<n|amount_sum|amount_avg|amount_max>_<1h|1d|7d|30d>` (or the 4 of the
30d window for the one-window fsql side), with the contract of DESIGN.md "Windowed
aggregates": rows with `t - w <= e < t`, count 0 for an empty window, NULL otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import fsql

WINDOWS = {"1h": 3600, "1d": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
WIDEST = "30d"
FUNCTIONS = ("n", "amount_sum", "amount_avg", "amount_max")
SPAN_S = 90 * 86_400  # events and spine times spread over 90 days of 2025
START = np.datetime64("2025-01-01T00:00:00", "us")
SPINE_FROM_EVENTS = 0.2  # this share of spine rows sits exactly on an event (key and time): the open end
NULL_AMOUNTS = 0.01  # this share of amounts is NULL: count(*) and avg(amount) part ways


@dataclass(frozen=True)
class Distribution:
    name: str
    keys: int  # at full scale; events per key stay the same at every scale
    label: str


DISTRIBUTIONS = {
    "sparse": Distribution("sparse", 50_000, "50k keys, ~100 events each"),
    "hot": Distribution("hot", 5_000, "5k hot keys, ~1,000 events each"),
}
FULL_EVENTS, FULL_SPINE = 5_000_000, 500_000


@dataclass(frozen=True)
class Dataset:
    events: Path
    spine: Path
    keys: int
    event_rows: int
    spine_rows: int


def feature_names(windows: tuple[str, ...] = tuple(WINDOWS), functions: tuple[str, ...] = FUNCTIONS) -> list[str]:
    return [f"{f}_{w}" for f in functions for w in windows]


def generate(folder: Path, dist: Distribution, scale: float, seed: int = 8) -> Dataset:
    """Events (user_id, event_ts, amount) and a spine (row_id, user_id, event_timestamp) as parquet."""
    rng = np.random.default_rng(seed)
    n_events, n_spine = max(int(FULL_EVENTS * scale), 10), max(int(FULL_SPINE * scale), 10)
    keys = max(int(dist.keys * scale), 1)
    event_keys = rng.integers(0, keys, n_events)
    event_us = rng.integers(0, SPAN_S * 1_000_000, n_events)
    amount = np.round(1 + rng.random(n_events) * 99, 2)
    amount_null = rng.random(n_events) < NULL_AMOUNTS
    on_event = rng.random(n_spine) < SPINE_FROM_EVENTS
    picked = rng.integers(0, n_events, n_spine)
    spine_keys = np.where(on_event, event_keys[picked], rng.integers(0, keys, n_spine))
    spine_us = np.where(on_event, event_us[picked], rng.integers(0, SPAN_S * 1_000_000, n_spine))
    folder.mkdir(parents=True, exist_ok=True)
    events = pa.table(
        {
            "user_id": pa.array(event_keys, pa.int64()),
            "event_ts": _instants(event_us),
            "amount": pa.array(amount, pa.float64(), mask=amount_null),
            # the same amounts in whole cents: exact (integer) sums and averages
            "cents": pa.array(np.round(amount * 100).astype(np.int64), pa.int64(), mask=amount_null),
        }
    )
    spine = pa.table(
        {
            "row_id": pa.array(np.arange(n_spine), pa.int64()),
            "user_id": pa.array(spine_keys, pa.int64()),
            "event_timestamp": _instants(spine_us),
        }
    )
    paths = Dataset(folder / "events.parquet", folder / "spine.parquet", keys, n_events, n_spine)
    pq.write_table(events, paths.events)
    pq.write_table(spine, paths.spine)
    return paths


def _instants(offsets_us: np.ndarray) -> pa.Array:
    return pa.array(START + offsets_us.astype("timedelta64[us]"), pa.timestamp("us", tz="UTC"))


# --- fsql -------------------------------------------------------------------------------------

_PROJECT = "name: agg_bench\ndialect: duckdb\n"
_PROFILES = 'agg_bench:\n  target: dev\n  outputs:\n    dev:\n      offline: "duckdb:///:memory:"\n'
_DEFINITIONS = """\
entities:
  - {{name: user, join_keys: [{{name: user_id, type: bigint}}]}}
sources:
  - name: events
    {source}
    timestamp: event_ts
    columns: {{user_id: bigint, event_ts: timestamptz, amount: double, cents: bigint}}
feature_views:
{views}
feature_services:
  - {{name: four_windows, features: [user_windows]}}
  - {{name: one_window, features: [user_window_30d]}}
  - {{name: exact, features: [user_exact]}}
  - {{name: exact_max, features: [user_exact_max]}}
"""
_VIEW = """\
  - name: {name}
    entities: [user]
    source: events
    aggregations:
      - {{name: n, function: count, windows: [{windows}]}}
      - {{name: amount_sum, function: sum, expr: amount, windows: [{windows}]}}
      - {{name: amount_avg, function: avg, expr: amount, windows: [{windows}]}}
      - {{name: amount_max, function: max, expr: amount, windows: [{windows}]}}
"""
_EXACT_VIEW = """\
  - name: {name}
    entities: [user]
    source: events
    aggregations:
      - {{name: n, function: count, windows: [{windows}]}}
      - {{name: cents_sum, function: sum, expr: cents, windows: [{windows}]}}
      - {{name: cents_avg, function: avg, expr: cents, windows: [{windows}]}}
"""
_MAX = "      - {{name: cents_max, function: max, expr: cents, windows: [{windows}]}}\n"
SERVICES = {"fsql": "four_windows", "fsql_1w": "one_window", "fsql_exact": "exact", "fsql_exact_max": "exact_max"}
# The integer sides: count, sum and avg of cents (running totals on DuckDB), and with max too.
EXACT_FUNCTIONS = {
    "fsql_exact": ("n", "cents_sum", "cents_avg"),
    "fsql_exact_max": ("n", "cents_sum", "cents_avg", "cents_max"),
}


def write_project(folder: Path, data: Dataset) -> Path:
    """A temporary fsql project: one entity, the events file, a 4-window and a 1-window (30d) view."""
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "fsql_project.yml").write_text(_PROJECT)
    (folder / "profiles.yml").write_text(_PROFILES)
    (folder / "definitions" / "bench.yml").write_text(definitions_text(f"path: {data.events}"))
    return folder


def definitions_text(source: str) -> str:
    """The definitions, the events source read by `source` (`path: ...` or `table: ...`)."""
    views = _VIEW.format(name="user_windows", windows=", ".join(WINDOWS))
    views += _VIEW.format(name="user_window_30d", windows=WIDEST)
    windows = ", ".join(WINDOWS)
    views += _EXACT_VIEW.format(name="user_exact", windows=windows)
    views += (_EXACT_VIEW + _MAX).format(name="user_exact_max", windows=windows)
    return _DEFINITIONS.format(source=source, views=views)


def run_fsql(project: Path, data: Dataset, service: str) -> pa.Table:
    return fsql.load_project(project).training_set(service=service, spine=str(data.spine))


# --- hand-written DuckDB ----------------------------------------------------------------------


def _interval(window: str) -> str:
    return f"INTERVAL {WINDOWS[window]} SECOND"


def range_join_sql(data: Dataset, functions: tuple[str, ...] = FUNCTIONS) -> str:
    """(1) Spine JOIN events on the key and the widest window, conditional aggregates per window."""
    exprs = {
        "n": "count(e.event_ts)",
        "amount_sum": "sum(e.amount)",
        "amount_avg": "avg(e.amount)",
        "amount_max": "max(e.amount)",
    }
    aggs = [
        f"{exprs[f]} FILTER (WHERE e.event_ts >= s.event_timestamp - {_interval(w)}) AS {f}_{w}"
        for f in functions
        for w in WINDOWS
    ]
    return f"""SELECT s.row_id, any_value(s.user_id) AS user_id, any_value(s.event_timestamp) AS event_timestamp,
      {", ".join(aggs)}
    FROM read_parquet('{data.spine}') s
    LEFT JOIN read_parquet('{data.events}') e
      ON e.user_id = s.user_id AND e.event_ts >= s.event_timestamp - {_interval(WIDEST)}
      AND e.event_ts < s.event_timestamp
    GROUP BY s.row_id"""


def union_frames_sql(data: Dataset) -> str:
    """(2) Spine rows and events in one relation, a RANGE frame per window.

    The frame ends 1 microsecond before the row (timestamps are whole microseconds), so rows at
    exactly t (events and the spine row itself) are out and t - w is in: `[t - w, t)` exactly.
    Spine rows inside a frame add nothing: their `is_event` and amount are NULL."""
    cols = []
    for w in WINDOWS:
        frame = (
            f"(PARTITION BY user_id ORDER BY ts RANGE BETWEEN {_interval(w)} PRECEDING "
            "AND INTERVAL 1 MICROSECOND PRECEDING)"
        )
        cols.append(f"count(is_event) OVER {frame} AS n_{w}")
        cols.append(f"sum(amount) OVER {frame} AS amount_sum_{w}")
        cols.append(f"avg(amount) OVER {frame} AS amount_avg_{w}")
        cols.append(f"max(amount) OVER {frame} AS amount_max_{w}")
    return f"""SELECT row_id, user_id, ts AS event_timestamp, {", ".join(cols)}
    FROM (
      SELECT row_id, user_id, event_timestamp AS ts, NULL::INTEGER AS is_event, NULL::DOUBLE AS amount
      FROM read_parquet('{data.spine}')
      UNION ALL
      SELECT NULL, user_id, event_ts, 1, amount FROM read_parquet('{data.events}')
    )
    QUALIFY row_id IS NOT NULL"""


def cumulative_sql(data: Dataset) -> str:
    """(3) Running totals per key, read with ASOF joins at t and at t - w: count, sum, avg.

    `ASOF ... s.t > c.e` finds the last event time strictly before t: the totals of `e < t`;
    the difference of two such reads is `t - w <= e < t`. Max does not decompose into a
    difference, so it comes from a max-only range join (shape 1 with one function), joined by
    row id."""
    joins, cols = [], []
    for i, w in enumerate(WINDOWS):
        joins.append(
            f"ASOF LEFT JOIN cum c{i} ON c{i}.user_id = s.user_id AND s.event_timestamp - {_interval(w)} > c{i}.e"
        )
        rows, values, total = (f"(coalesce(c.{x}, 0) - coalesce(c{i}.{x}, 0))" for x in ("rows", "values", "total"))
        cols += [
            f"{rows} AS n_{w}",
            f"CASE WHEN {values} > 0 THEN {total} END AS amount_sum_{w}",
            f"CASE WHEN {values} > 0 THEN {total} / {values} END AS amount_avg_{w}",
            f"m.amount_max_{w}",
        ]
    return f"""WITH per_time AS (
      SELECT user_id, event_ts AS e, count(*) AS rows, count(amount) AS values, sum(amount) AS total
      FROM read_parquet('{data.events}') GROUP BY user_id, event_ts),
    cum AS (
      SELECT user_id, e, sum(rows) OVER w AS rows, sum(values) OVER w AS values, sum(total) OVER w AS total
      FROM per_time WINDOW w AS (PARTITION BY user_id ORDER BY e ROWS UNBOUNDED PRECEDING)),
    m AS ({range_join_sql(data, ("amount_max",))})
    SELECT s.row_id, s.user_id, s.event_timestamp, {", ".join(cols)}
    FROM read_parquet('{data.spine}') s
    ASOF LEFT JOIN cum c ON c.user_id = s.user_id AND s.event_timestamp > c.e
    {" ".join(joins)}
    JOIN m ON m.row_id = s.row_id"""


# The range join asked for the running-total functions only: what fsql_exact replaces.
EXACT_RANGE_FUNCTIONS = ("n", "amount_sum", "amount_avg")


def range_join_exact_sql(data: Dataset) -> str:
    return range_join_sql(data, EXACT_RANGE_FUNCTIONS)


HAND_SHAPES = {"range_join": range_join_sql, "union_frames": union_frames_sql, "cumulative": cumulative_sql}


def run_sql(sql: str) -> pa.Table:
    """On a fresh DuckDB connection in UTC, materialized as arrow, as fsql's engine does."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


# --- pandas -----------------------------------------------------------------------------------


def run_pandas(data: Dataset) -> pa.Table:
    """As a data scientist writes it: spine rows appended to the events, groupby-rolling per key
    with closed='left' (the window `[t - w, t)`), then the spine rows picked back out."""
    events = pd.read_parquet(data.events)
    spine = pd.read_parquet(data.spine)
    events["is_event"] = 1.0
    frame = pd.concat([events.rename(columns={"event_ts": "ts"}), spine.rename(columns={"event_timestamp": "ts"})])
    frame = frame.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    grouped = frame.set_index("ts").groupby("user_id")
    out = frame.loc[frame["row_id"].notna(), ["row_id", "user_id", "ts"]].copy()
    picked = out.index.to_numpy()
    for w, seconds in WINDOWS.items():
        amount = grouped["amount"].rolling(f"{seconds}s", closed="left")
        out[f"n_{w}"] = grouped["is_event"].rolling(f"{seconds}s", closed="left").count().to_numpy()[picked]
        out[f"amount_sum_{w}"] = amount.sum().to_numpy()[picked]
        out[f"amount_avg_{w}"] = amount.mean().to_numpy()[picked]
        out[f"amount_max_{w}"] = amount.max().to_numpy()[picked]
    # rolling sum gives 0 over windows with no amounts; the contract (and SQL) says NULL
    for w in WINDOWS:
        out.loc[out[f"amount_avg_{w}"].isna(), f"amount_sum_{w}"] = np.nan
        out[f"n_{w}"] = out[f"n_{w}"].fillna(0).astype("int64")
    out = out.rename(columns={"ts": "event_timestamp"}).astype({"row_id": "int64"})
    return pa.Table.from_pandas(out.reset_index(drop=True), preserve_index=False)


def timed(run: object, *args: object) -> tuple[pa.Table, float]:
    started = time.perf_counter()
    table = run(*args)  # type: ignore[operator]
    return table, time.perf_counter() - started
