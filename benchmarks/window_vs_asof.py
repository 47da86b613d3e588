"""The window strategy (BigQuery, Spark) against DuckDB's ASOF, on the same data.

    python benchmarks/window_vs_asof.py [--scale small|default|large] [--reps N]
                                        [--spark-scale small|default|none] [--write]

One two-view fsql project (driver_stats with a created time, rider_stats without; ttl
30 days) over benchmarks/datagen.py's data, compiled twice:
- `asof`: the DuckDB query fsql runs (ASOF LEFT JOIN per view);
- `window`: the BigQuery query, transpiled to DuckDB by sqlglot and run there, which is
  how the test suite checks BigQuery SQL. The ratio window / asof is the price of a
  dialect without ASOF, measured on one engine.
Both must return the same rows before anything is timed. Then the Spark query of the
same project runs on a local pyspark session (no goal: seconds at a moderate scale).
`--write` records the figures in benchmarks/WINDOW_RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import datagen
import duckdb
import pyarrow as pa
import sqlglot

import fsql
from fsql.compile import Spine, compile_training_query
from fsql.compile.spine import spine_relation

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "WINDOW_RESULTS.md"
RESULTS_TITLE = (
    "# The window strategy against ASOF\n\nWritten by benchmarks/window_vs_asof.py --write; newest first.\n\n"
)
FEATURES = ["driver_stats", "rider_stats"]

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
    ttl: 30d
    features: [{{name: conv_rate, type: double}}, {{name: acc_rate, type: double}},
               {{name: avg_daily_trips, type: bigint}}]
  - name: rider_stats
    entities: [rider]
    source: rider_stats
    ttl: 30d
    features: [{{name: spend_30d, type: double}}, {{name: avg_rating, type: double}},
               {{name: trips_30d, type: bigint}}]
"""


def compile_sql(project_dir: Path, data: datagen.Dataset, dialect: str) -> str:
    """The training query for `dialect`, reading a relation named `spine`."""
    definitions = fsql.load_project(project_dir).definitions
    spine = Spine(spine_relation("spine", dialect), "event_timestamp")
    return compile_training_query(definitions, spine=spine, dialect=dialect, features=FEATURES).sql


def write_project(folder: Path, data: datagen.Dataset) -> Path:
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "fsql_project.yml").write_text("name: window_bench\ndialect: duckdb\n")
    text = _DEFINITIONS.format(driver_stats=data.driver_stats, rider_stats=data.rider_stats)
    (folder / "definitions" / "bench.yml").write_text(text)
    return folder


def run_duckdb(sql: str, data: datagen.Dataset) -> tuple[pa.Table, float]:
    """One run on a fresh connection in UTC, the spine a view over its parquet file."""
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE VIEW spine AS SELECT * FROM read_parquet('{data.spine}')")
        started = time.perf_counter()
        table = connection.sql(sql).to_arrow_table()
        return table, time.perf_counter() - started
    finally:
        connection.close()


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("request_id", "ascending")])


def duckdb_figures(scale: datagen.Scale, reps: int) -> dict[str, float]:
    data, _ = datagen.generate(scale)
    with tempfile.TemporaryDirectory(prefix="fsql-window-bench-") as folder:
        project = write_project(Path(folder), data)
        asof_sql = compile_sql(project, data, "duckdb")
        window_sql = sqlglot.parse_one(compile_sql(project, data, "bigquery"), read="bigquery").sql("duckdb")
    asof, _ = run_duckdb(asof_sql, data)
    window, _ = run_duckdb(window_sql, data)
    if not sorted_rows(window).equals(sorted_rows(asof)):
        raise SystemExit("the window strategy and ASOF disagree: nothing timed")
    times: dict[str, list[float]] = {"asof": [], "window": []}
    for _ in range(reps):  # interleaved, so drift hits both sides alike
        for side, sql in (("asof", asof_sql), ("window", window_sql)):
            times[side].append(run_duckdb(sql, data)[1])
    medians = {side: statistics.median(values) for side, values in times.items()}
    return {**medians, "ratio": medians["window"] / medians["asof"], "rows": asof.num_rows}


def spark_figures(scale: datagen.Scale, reps: int) -> dict[str, float]:
    os.environ.setdefault("TZ", "UTC")
    from fsql.engines.spark import SparkEngine

    data, _ = datagen.generate(scale)
    started = time.perf_counter()
    engine = SparkEngine("spark://?master=local[2]&spark.sql.shuffle.partitions=8", root=HERE)
    session_s = time.perf_counter() - started
    try:
        engine.session.read.parquet(str(data.spine)).createOrReplaceTempView("spine")
        with tempfile.TemporaryDirectory(prefix="fsql-window-bench-") as folder:
            sql = compile_sql(write_project(Path(folder), data), data, "spark")
        first_started = time.perf_counter()
        rows = engine.query_arrow(sql).num_rows
        first_s = time.perf_counter() - first_started
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            engine.query_arrow(sql)
            times.append(time.perf_counter() - started)
    finally:
        engine.close()
    return {"session": session_s, "first": first_s, "median": statistics.median(times), "rows": rows}


def record(args: argparse.Namespace, duck: dict[str, float], spark: dict[str, float] | None) -> str:
    scale, spark_scale = datagen.SCALES[args.scale], datagen.SCALES.get(args.spark_scale)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python benchmarks/window_vs_asof.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, sqlglot {sqlglot.__version__}.",
        "",
        f"DuckDB, {scale.spine_rows:,} spine rows x 2 views x {scale.view_rows:,} rows, median of {args.reps}:",
        "",
        "| strategy | seconds |",
        "| --- | --- |",
        f"| asof (DuckDB's query) | {duck['asof']:.3f} |",
        f"| window (BigQuery's query, transpiled) | {duck['window']:.3f} |",
        f"| ratio window / asof | {duck['ratio']:.2f} |",
        "",
    ]
    if spark and spark_scale:
        lines += [
            f"Spark local[2], {spark_scale.spine_rows:,} spine rows x 2 views x {spark_scale.view_rows:,} rows: "
            f"session start {spark['session']:.1f} s, first run {spark['first']:.1f} s, "
            f"then median {spark['median']:.1f} s of {args.reps}.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(datagen.SCALES), default="default")
    parser.add_argument("--spark-scale", choices=[*sorted(datagen.SCALES), "none"], default="small")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"append the figures to {RESULTS.name}")
    args = parser.parse_args()
    duck = duckdb_figures(datagen.SCALES[args.scale], args.reps)
    print(f"duckdb: asof {duck['asof']:.3f} s, window {duck['window']:.3f} s, ratio {duck['ratio']:.2f}")
    spark = None if args.spark_scale == "none" else spark_figures(datagen.SCALES[args.spark_scale], args.reps)
    if spark:
        print(f"spark: session {spark['session']:.1f} s, first {spark['first']:.1f} s, median {spark['median']:.1f} s")
    text = record(args, duck, spark)
    print(text)
    if args.write:
        older = RESULTS.read_text().removeprefix(RESULTS_TITLE) if RESULTS.exists() else ""
        RESULTS.write_text(RESULTS_TITLE + text + "\n" + older)


if __name__ == "__main__":
    main()
