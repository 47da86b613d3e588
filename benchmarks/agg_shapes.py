"""Measure SQL shapes for windowed aggregates on DuckDB, to choose what fsql emits.

`python benchmarks/agg_shapes.py [--events N] [--spine N]` generates events and a spine in
memory (deterministic), runs each shape for count, sum, avg and max over windows 1h, 1d,
7d and 30d (the cumulative-sum shape cannot give max), checks the shapes agree, and prints
one line per (distribution, shape) with the median of 3 runs. Figures go to AGG_SHAPES.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb

WINDOWS = {"1h": "INTERVAL 1 HOUR", "1d": "INTERVAL 1 DAY", "7d": "INTERVAL 7 DAY", "30d": "INTERVAL 30 DAY"}
WIDEST = "INTERVAL 30 DAY"


def generate(con: duckdb.DuckDBPyConnection, *, events: int, spine: int, keys: int) -> None:
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""CREATE OR REPLACE TABLE events AS
        SELECT (random() * {keys})::BIGINT AS k,
               TIMESTAMPTZ '2025-01-01' + to_microseconds((random() * 90 * 86400e6)::BIGINT) AS e,
               (random() * 1000)::BIGINT AS v
        FROM range({events})"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE spine AS
        SELECT row_number() OVER () AS sid, (random() * {keys})::BIGINT AS k,
               TIMESTAMPTZ '2025-01-15' + to_microseconds((random() * 76 * 86400e6)::BIGINT) AS ts
        FROM range({spine})"""
    )


def range_join() -> str:
    aggs = []
    for name, w in WINDOWS.items():
        inside = f"r.e >= s.ts - {w}"
        aggs += [
            f"COUNT(CASE WHEN {inside} THEN 1 END) AS n_{name}",
            f"SUM(CASE WHEN {inside} THEN r.v END) AS s_{name}",
            f"AVG(CASE WHEN {inside} THEN r.v END) AS a_{name}",
            f"MAX(CASE WHEN {inside} THEN r.v END) AS m_{name}",
        ]
    return f"""SELECT s.sid, {", ".join(aggs)}
    FROM spine s LEFT JOIN events r ON r.k = s.k AND r.e >= s.ts - {WIDEST} AND r.e < s.ts
    GROUP BY s.sid"""


def range_join_filter() -> str:
    aggs = []
    for name, w in WINDOWS.items():
        inside = f"FILTER (WHERE r.e >= s.ts - {w})"
        aggs += [
            f"COUNT(r.v) {inside} AS n_{name}",
            f"SUM(r.v) {inside} AS s_{name}",
            f"AVG(r.v) {inside} AS a_{name}",
            f"MAX(r.v) {inside} AS m_{name}",
        ]
    return f"""SELECT s.sid, {", ".join(aggs)}
    FROM spine s LEFT JOIN events r ON r.k = s.k AND r.e >= s.ts - {WIDEST} AND r.e < s.ts
    GROUP BY s.sid"""


def range_join_distinct() -> str:
    """The range join over the spine's distinct (k, ts), joined back: duplicates computed once."""
    aggs = []
    for name, w in WINDOWS.items():
        inside = f"r.e >= d.ts - {w}"
        aggs += [
            f"COUNT(CASE WHEN {inside} THEN 1 END) AS n_{name}",
            f"SUM(CASE WHEN {inside} THEN r.v END) AS s_{name}",
            f"AVG(CASE WHEN {inside} THEN r.v END) AS a_{name}",
            f"MAX(CASE WHEN {inside} THEN r.v END) AS m_{name}",
        ]
    cols = ", ".join(f"COALESCE(g.n_{n}, 0) AS n_{n}, g.s_{n}, g.a_{n}, g.m_{n}" for n in WINDOWS)
    return f"""WITH d AS (SELECT DISTINCT k, ts FROM spine),
    g AS (SELECT d.k, d.ts, {", ".join(aggs)}
          FROM d JOIN events r ON r.k = d.k AND r.e >= d.ts - {WIDEST} AND r.e < d.ts GROUP BY d.k, d.ts)
    SELECT s.sid, {cols} FROM spine s LEFT JOIN g ON g.k = s.k AND g.ts = s.ts"""


def union_frames() -> str:
    outs = []
    for name, w in WINDOWS.items():
        frame = f"(PARTITION BY k ORDER BY t RANGE BETWEEN {w} PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING)"
        outs += [
            f"COUNT(v) OVER {frame} AS n_{name}",
            f"SUM(v) OVER {frame} AS s_{name}",
            f"AVG(v) OVER {frame} AS a_{name}",
            f"MAX(v) OVER {frame} AS m_{name}",
        ]
    return f"""SELECT sid, {", ".join(f"{o}" for o in outs)} FROM (
        SELECT sid, k, ts AS t, NULL::BIGINT AS v FROM spine
        UNION ALL SELECT NULL, k, e, v FROM events) u
    QUALIFY sid IS NOT NULL"""


def cumulative_asof() -> str:
    joins, cols = [], []
    for i, (name, w) in enumerate(WINDOWS.items()):
        joins.append(f"ASOF LEFT JOIN cum c{i} ON c{i}.k = s.k AND s.ts - {w} > c{i}.e")
        n = f"(COALESCE(c.n, 0) - COALESCE(c{i}.n, 0))"
        sm = f"(COALESCE(c.s, 0) - COALESCE(c{i}.s, 0))"
        cols += [f"{n} AS n_{name}", f"CASE WHEN {n} > 0 THEN {sm} END AS s_{name}"]
        cols.append(f"{sm} / NULLIF({n}, 0) AS a_{name}")
    return f"""WITH per_time AS (SELECT k, e, COUNT(v) AS n, SUM(v) AS s FROM events GROUP BY k, e),
    cum AS (SELECT k, e, SUM(n) OVER w AS n, SUM(s) OVER w AS s FROM per_time
            WINDOW w AS (PARTITION BY k ORDER BY e ROWS UNBOUNDED PRECEDING))
    SELECT s.sid, {", ".join(cols)}
    FROM spine s ASOF LEFT JOIN cum c ON c.k = s.k AND s.ts > c.e {" ".join(joins)}"""


def tiles() -> str:
    """1h tiles, spine ends snapped to the hour: a range join over tiles (the granular case)."""
    aggs = []
    for name, w in WINDOWS.items():
        inside = f"t.b >= s.te - {w}"
        aggs += [
            f"COALESCE(SUM(CASE WHEN {inside} THEN t.n END), 0) AS n_{name}",
            f"SUM(CASE WHEN {inside} THEN t.s END) AS s_{name}",
            f"SUM(CASE WHEN {inside} THEN t.s END) / NULLIF(SUM(CASE WHEN {inside} THEN t.n END), 0) AS a_{name}",
            f"MAX(CASE WHEN {inside} THEN t.m END) AS m_{name}",
        ]
    return f"""WITH t AS (SELECT k, time_bucket(INTERVAL 1 HOUR, e) AS b, COUNT(v) AS n, SUM(v) AS s, MAX(v) AS m
                   FROM events GROUP BY k, b),
    s AS (SELECT sid, k, time_bucket(INTERVAL 1 HOUR, ts) AS te FROM spine)
    SELECT s.sid, {", ".join(aggs)}
    FROM s LEFT JOIN t ON t.k = s.k AND t.b >= s.te - {WIDEST} AND t.b < s.te GROUP BY s.sid"""


def range_join_snapped() -> str:
    return range_join().replace("s.ts", "time_bucket(INTERVAL 1 HOUR, s.ts)")


SHAPES = {
    "range join, CASE": range_join,
    "range join, FILTER": range_join_filter,
    "range join over distinct (k, ts)": range_join_distinct,
    "union + RANGE frames": union_frames,
    "cumulative sums + 5 ASOF (no max)": cumulative_asof,
    "1h tiles + range join (snapped)": tiles,
    "range join (snapped, for tiles)": range_join_snapped,
}


def timed(con: duckdb.DuckDBPyConnection, sql: str, reps: int) -> float:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE out AS {sql}")
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def check_equal(con: duckdb.DuckDBPyConnection, a: str, b: str, cols: list[str]) -> None:
    select = ", ".join(["sid", *cols])
    con.execute(f"CREATE OR REPLACE TEMP TABLE x AS SELECT {select} FROM ({a})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE y AS SELECT {select} FROM ({b})")
    differ = con.execute("SELECT count(*) FROM (SELECT * FROM x EXCEPT ALL SELECT * FROM y)").fetchone()
    assert differ == (0,), f"shapes disagree on {differ} rows"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--spine", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 2")
    for label, keys in (("sparse", args.events // 100), ("hot", args.events // 1000)):
        generate(con, events=args.events, spine=args.spine, keys=keys)
        exact = [f"{f}_{n}" for n in WINDOWS for f in ("n", "s")]
        check_equal(con, range_join(), union_frames(), [*exact, *(f"m_{n}" for n in WINDOWS)])
        check_equal(con, range_join(), cumulative_asof(), exact)
        check_equal(con, range_join(), range_join_distinct(), exact)
        check_equal(con, range_join_snapped(), tiles(), [*exact, *(f"m_{n}" for n in WINDOWS)])
        print(f"{label}: {keys} keys, ~{args.events // keys} events and ~{args.spine // keys} spine rows per key")
        for name, shape in SHAPES.items():
            print(f"  {name}: {timed(con, shape(), args.reps):.2f} s", flush=True)


if __name__ == "__main__":
    main()
