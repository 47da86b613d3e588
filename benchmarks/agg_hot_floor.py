"""How fast can any DuckDB query be at hot keys? The cost of the building blocks, against pandas.

    python benchmarks/agg_hot_floor.py [--scale 1.0] [--reps 3]

The hot-key data of benchmarks/aggregates.py (5k keys, ~1,000 events each, 500k spine rows at
scale 1). The issue's goal is fsql 10x faster than pandas groupby-rolling for the 16 features
(count, sum, avg and max over 1h/1d/7d/30d); this measures, in one run, the pieces every
exact DuckDB shape for them is made of, each alone, so that the floor of the fastest shape can
be read off: a sort of the spine and events together; one RANGE-frame aggregate over that
union (the UNION shape needs one per function and window); running totals of one column read
by the five ASOF joins the running-total shape needs (count/sum/avg over 4 windows); and fsql
and pandas computing all 16. Each probe sums its outputs so that DuckDB cannot prune them.
Median of --reps interleaved runs (pandas and fsql once each per round). Figures in
AGG_SHAPES.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import agg_workloads as w
import duckdb


def probes(data: w.Dataset) -> dict[str, str]:
    union = f"""(SELECT row_id, user_id, event_timestamp AS ts, NULL::INTEGER AS is_event, NULL::DOUBLE AS amount
      FROM read_parquet('{data.spine}')
      UNION ALL SELECT NULL, user_id, event_ts, 1, amount FROM read_parquet('{data.events}'))"""

    def frame(window: str) -> str:
        return (
            f"(PARTITION BY user_id ORDER BY ts RANGE BETWEEN INTERVAL {w.WINDOWS[window]} SECOND PRECEDING "
            "AND INTERVAL 1 MICROSECOND PRECEDING)"
        )

    def one_frame(function: str, column: str, window: str) -> str:
        return (
            f"SELECT sum(x) FROM (SELECT row_id, {function}({column}) OVER {frame(window)} AS x FROM {union} "
            "QUALIFY row_id IS NOT NULL)"
        )

    totals = (
        f"(SELECT user_id, event_ts AS e, sum(amount) OVER (PARTITION BY user_id ORDER BY event_ts "
        f"ROWS UNBOUNDED PRECEDING) AS t FROM read_parquet('{data.events}'))"
    )
    reads = ["ASOF LEFT JOIN c c0 ON c0.user_id = s.user_id AND s.event_timestamp > c0.e"] + [
        f"ASOF LEFT JOIN c c{i} ON c{i}.user_id = s.user_id AND s.event_timestamp - INTERVAL {seconds} SECOND > c{i}.e"
        for i, seconds in enumerate(w.WINDOWS.values(), start=1)
    ]
    return {
        "sort of spine + events (row_number)": (
            f"SELECT sum(r) FROM (SELECT row_id, row_number() OVER (PARTITION BY user_id ORDER BY ts) AS r "
            f"FROM {union} QUALIFY row_id IS NOT NULL)"
        ),
        "one RANGE-frame count, 30d": one_frame("count", "is_event", "30d"),
        "one RANGE-frame sum, 30d": one_frame("sum", "amount", "30d"),
        "one RANGE-frame max, 1h": one_frame("max", "amount", "1h"),
        "one RANGE-frame max, 30d": one_frame("max", "amount", "30d"),
        "running totals of one column + 5 ASOF reads": (
            f"WITH c AS MATERIALIZED {totals} SELECT {' + '.join(f'sum(c{i}.t)' for i in range(5))} "
            f"FROM read_parquet('{data.spine}') s {' '.join(reads)}"
        ),
    }


def run_sql(sql: str) -> None:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.sql(sql).fetchall()
    finally:
        con.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        data = w.generate(Path(folder) / "hot", w.DISTRIBUTIONS["hot"], args.scale)
        project = w.write_project(Path(folder) / "project", data)
        sides: dict[str, Callable[[], object]] = {
            name: (lambda s=sql: run_sql(s)) for name, sql in probes(data).items()
        }
        sides["fsql training_set(), 16 features"] = lambda: w.run_fsql(project, data, w.SERVICES["fsql"])
        sides["pandas groupby-rolling, 16 features"] = lambda: w.run_pandas(data)
        runs: dict[str, list[float]] = {name: [] for name in sides}
        for rep in range(args.reps):
            for name in sides if rep % 2 == 0 else reversed(list(sides)):
                started = time.perf_counter()
                sides[name]()
                runs[name].append(time.perf_counter() - started)
                print(f"  round {rep + 1}/{args.reps}  {name:<48} {runs[name][-1]:7.2f} s", flush=True)
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    pandas = medians["pandas groupby-rolling, 16 features"]
    print(
        f"\n{data.event_rows:,} events, {data.spine_rows:,} spine rows, {data.keys:,} keys; median of {args.reps}; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| probe | median s | pandas / probe |\n| --- | ---: | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} | {pandas / seconds:.1f} |")
    print(f"\nThe goal (10x pandas) is {pandas / 10:.2f} s for all 16 features.")


if __name__ == "__main__":
    main(sys.argv[1:])
