"""Max over four windows at hot and sparse keys: the range join against a UNION with RANGE frames.

    python benchmarks/agg_max_shapes.py [--scale 0.2] [--reps 3]

The data of benchmarks/aggregates.py (agg_workloads.generate); only the 4 max columns, checked
equal between the shapes, each timed as CREATE TABLE AS on a fresh connection, median of
--reps interleaved runs. Figures are in AGG_SHAPES.md ("Running totals on DuckDB, and max").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import agg_workloads as w
import duckdb


def range_join_max(data: w.Dataset) -> str:
    maxes = ", ".join(f"amount_max_{window}" for window in w.WINDOWS)
    return f"SELECT row_id, {maxes} FROM ({w.range_join_sql(data, ('amount_max',))})"


def union_frames_max(data: w.Dataset) -> str:
    cols = []
    for window, seconds in w.WINDOWS.items():
        frame = (
            f"(PARTITION BY user_id ORDER BY ts RANGE BETWEEN INTERVAL {seconds} SECOND PRECEDING "
            "AND INTERVAL 1 MICROSECOND PRECEDING)"
        )
        cols.append(f"max(amount) OVER {frame} AS amount_max_{window}")
    return f"""SELECT row_id, {", ".join(cols)} FROM (
      SELECT row_id, user_id, event_timestamp AS ts, NULL::DOUBLE AS amount FROM read_parquet('{data.spine}')
      UNION ALL SELECT NULL, user_id, event_ts, amount FROM read_parquet('{data.events}'))
    QUALIFY row_id IS NOT NULL"""


SHAPES = {"range_join_max": range_join_max, "union_frames_max": union_frames_max}


def run(sql: str) -> tuple[list[tuple], float]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        started = time.perf_counter()
        con.execute(f"CREATE TEMP TABLE result AS {sql}")
        seconds = time.perf_counter() - started
        return con.sql("SELECT * FROM result ORDER BY row_id").fetchall(), seconds
    finally:
        con.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fsql-agg-max-") as folder:
        for name, dist in w.DISTRIBUTIONS.items():
            data = w.generate(Path(folder) / name, dist, args.scale)
            runs: dict[str, list[float]] = {shape: [] for shape in SHAPES}
            answers = {}
            for rep in range(args.reps):
                for shape in SHAPES if rep % 2 == 0 else reversed(SHAPES):
                    answers[shape], seconds = run(SHAPES[shape](data))
                    runs[shape].append(seconds)
            if answers["range_join_max"] != answers["union_frames_max"]:
                raise SystemExit(f"{name}: the shapes disagree")
            medians = ", ".join(f"{s} {statistics.median(t):.2f} s" for s, t in runs.items())
            print(f"{name}: {medians} (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main(sys.argv[1:])
