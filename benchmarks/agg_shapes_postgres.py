"""Measure SQL shapes for windowed aggregates on Postgres (see AGG_SHAPES.md).

`python benchmarks/agg_shapes_postgres.py` (a Postgres at 127.0.0.1:5432, db test): 1M events
over 10k keys and 100k spine rows, made in Postgres; count, sum, avg and max over 1h, 1d,
7d and 30d with an index on (k, e); one run per shape, with what the plan uses.
"""

from __future__ import annotations

import time

import psycopg

DSN = "postgresql://postgres@127.0.0.1:5432/test"
EVENTS, SPINE, KEYS = 1_000_000, 100_000, 10_000
WINDOWS = {"1h": "1 hour", "1d": "1 day", "7d": "7 days", "30d": "30 days"}


def aggregates(rows: str, spine: str) -> str:
    out = []
    for name, window in WINDOWS.items():
        inside = f"{rows}.e >= {spine}.ts - interval '{window}'"
        out += [
            f"count(case when {inside} then 1 end) n_{name}",
            f"sum(case when {inside} then {rows}.v end) s_{name}",
            f"avg(case when {inside} then {rows}.v end) a_{name}",
            f"max(case when {inside} then {rows}.v end) m_{name}",
        ]
    return ", ".join(out)


WIDEST = "r.e >= s.ts - interval '30 days' AND r.e < s.ts"
SHAPES = {
    "range join + GROUP BY": f"SELECT s.sid, {aggregates('r', 's')} FROM aggprobe.spine s "
    f"LEFT JOIN aggprobe.events r ON r.k = s.k AND {WIDEST} GROUP BY s.sid",
    "LATERAL pairs + GROUP BY": f"SELECT s.sid, {aggregates('r', 's')} FROM aggprobe.spine s LEFT JOIN LATERAL "
    f"(SELECT e, v FROM aggprobe.events r WHERE r.k = s.k AND {WIDEST}) r ON TRUE GROUP BY s.sid",
    "LATERAL aggregate per spine row": f"SELECT s.sid, a.* FROM aggprobe.spine s CROSS JOIN LATERAL "
    f"(SELECT {aggregates('r', 's')} FROM aggprobe.events r WHERE r.k = s.k AND {WIDEST}) a",
}


def main() -> None:
    with psycopg.connect(DSN, autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("DROP SCHEMA IF EXISTS aggprobe CASCADE; CREATE SCHEMA aggprobe")
        cursor.execute(
            f"CREATE TABLE aggprobe.events AS SELECT (random() * {KEYS})::bigint k, timestamptz '2025-01-01' "
            f"+ random() * interval '90 days' e, (random() * 1000)::bigint v FROM generate_series(1, {EVENTS})"
        )
        cursor.execute(
            f"CREATE TABLE aggprobe.spine AS SELECT g sid, (random() * {KEYS})::bigint k, timestamptz '2025-01-15' "
            f"+ random() * interval '76 days' ts FROM generate_series(1, {SPINE}) g"
        )
        cursor.execute("CREATE INDEX ON aggprobe.events (k, e); ANALYZE aggprobe.events; ANALYZE aggprobe.spine")
        for name, sql in SHAPES.items():
            cursor.execute("EXPLAIN " + sql)
            plan = " ".join(row[0] for row in cursor.fetchall())
            start = time.perf_counter()
            cursor.execute(f"CREATE TEMP TABLE out AS {sql}")
            seconds = time.perf_counter() - start
            cursor.execute("DROP TABLE out")
            print(f"{name}: {seconds:.2f} s; index scan {'Index' in plan}, hash join {'Hash Join' in plan}", flush=True)
        cursor.execute("DROP SCHEMA aggprobe CASCADE")


if __name__ == "__main__":
    main()
