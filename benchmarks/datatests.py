"""`fsql test` on a 1M-row source against one hand-written DuckDB query computing the same failures.

    python benchmarks/datatests.py [--rows 1000000] [--runs 3] [--write]

A parquet source of N events (user_id, event_ts, amount, plan; a few planted NULLs, duplicate
keys, unknown plans and negative amounts) with seven tests: not_null, unique, accepted_values,
accepted_range, expression, row_count and freshness. fsql runs one query per test (as dbt
does, so each test has its own SQL, status and samples); the hand-written side computes
every failure count in one query with one scan of the file plus the GROUP BY of `unique`.
Both sides' failure counts are checked equal in every run; the medians of interleaved runs
are printed, and with `--write` put in RESULTS.md between this script's markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import report
from aggregates import write_note

import fsql
from fsql.datatests.run import run_tests

NOTE_BEGIN = "<!-- datatests.py: begin -->"
NOTE_END = "<!-- datatests.py: end -->"
AT = datetime(2024, 3, 20, tzinfo=UTC)
PLANS = ["free", "pro", "team"]
PROJECT = """entities:
  - name: user
    join_keys: [{name: user_id, type: bigint}]
sources:
  - name: events
    path: data/events.parquet
    timestamp: event_ts
    columns: {user_id: bigint, event_ts: timestamptz, amount: double, plan: string}
    tests:
      - {not_null: [user_id, event_ts]}
      - {unique: [user_id, event_ts]}
      - {accepted_values: {column: plan, values: [free, pro, team]}}
      - {accepted_range: {column: amount, min: 0, max: 1000}}
      - {expression: "amount < 900 OR plan = 'team'"}
      - {row_count: {min: 1}}
      - {freshness: {warn_after: 1h, error_after: 1d}}
feature_views:
  - name: spend
    entities: [user]
    source: events
    features:
      - {name: amount, type: double}
"""

HAND = """
WITH events AS (SELECT * FROM read_parquet('{path}'))
SELECT
  count(*) FILTER (WHERE user_id IS NULL OR event_ts IS NULL) AS not_null,
  (SELECT count(*) FROM (SELECT user_id, event_ts FROM events GROUP BY ALL HAVING count(*) > 1)) AS "unique",
  count(*) FILTER (WHERE plan NOT IN ('free', 'pro', 'team')) AS accepted_values,
  count(*) FILTER (WHERE amount < 0 OR amount > 1000) AS accepted_range,
  count(*) FILTER (WHERE NOT (amount < 900 OR plan = 'team')) AS expression,
  count(*) AS row_count,
  max(event_ts) FILTER (WHERE event_ts <= TIMESTAMPTZ '{at}') AS newest
FROM events
"""


def events(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, rows // 10, rows)
    start = AT - timedelta(days=30)
    micros = np.sort(rng.integers(0, 30 * 86_400 * 1_000_000, rows))
    times = [start + timedelta(microseconds=int(m)) for m in micros]
    amount = rng.gamma(2.0, 60.0, rows)
    amount[rng.integers(0, rows, rows // 1000)] = -1.0
    plan = rng.choice([*PLANS, "legacy"], rows, p=[0.6, 0.3, 0.0999, 0.0001])
    nulls = np.zeros(rows, dtype=bool)
    nulls[rng.integers(0, rows, 50)] = True
    table = pa.table(
        {
            "user_id": pa.array(users, pa.int64(), mask=nulls),
            "event_ts": pa.array(times, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount),
            "plan": pa.array(plan),
        }
    )
    duplicates = table.slice(0, 200)  # the same (user_id, event_ts) again
    return pa.concat_tables([table, duplicates])


def write_project(root: Path, rows: int) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "definitions").mkdir()
    (root / "fsql_project.yml").write_text("name: datatests_bench\n")
    (root / "definitions" / "events.yml").write_text(PROJECT)
    pq.write_table(events(rows), root / "data" / "events.parquet")
    return root


def run_fsql(project: fsql.Project) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    run = run_tests(project, at=AT)
    seconds = time.perf_counter() - started
    return seconds, {result.test.kind: result.failures for result in run.results}


def run_hand(path: Path) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    row = con.execute(HAND.format(path=path, at=AT.isoformat(sep=" "))).fetchone()
    con.close()
    seconds = time.perf_counter() - started
    assert row is not None
    not_null, unique, values, ranged, expression, count, newest = row
    fresh = newest is not None and AT - newest <= timedelta(days=1)
    failures = {"not_null": not_null, "unique": unique, "accepted_values": values, "accepted_range": ranged,
                "expression": expression, "row_count": int(count < 1), "freshness": int(not fresh)}  # fmt: skip
    return seconds, failures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fsql-datatests-bench-") as folder:
        root = write_project(Path(folder) / "project", args.rows)
        project = fsql.load_project(root)
        path = root / "data" / "events.parquet"
        times: dict[str, list[float]] = {"fsql": [], "hand": []}
        for index in range(args.runs):
            order = [("fsql", lambda: run_fsql(project)), ("hand", lambda: run_hand(path))]
            answers = {}
            for side, run in order if index % 2 == 0 else order[::-1]:
                seconds, answers[side] = run()
                times[side].append(seconds)
            if answers["fsql"] != answers["hand"]:
                raise SystemExit(f"the failure counts differ: fsql {answers['fsql']}, hand {answers['hand']}")
            print(f"run {index + 1}: fsql {times['fsql'][-1]:.2f} s, hand {times['hand'][-1]:.2f} s; "
                  f"failures {answers['fsql']}", flush=True)  # fmt: skip
    fsql_s, hand_s = statistics.median(times["fsql"]), statistics.median(times["hand"])
    machine = report.machine()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    note = (
        f"{NOTE_BEGIN}\n## `fsql test` on a {args.rows:,}-row source\n\n"
        f"`python benchmarks/datatests.py --write`, {report.now()}: "
        f"{args.rows + 200:,} rows of parquet, 7 tests (not_null, unique, accepted_values, accepted_range, "
        f"expression, row_count, freshness), failure counts checked equal on both sides in every run; median of "
        f"{args.runs} interleaved runs, {machine['nproc']} cores ({machine['cpu']}), load average "
        f"{load} (1/5/15 min): fsql `run_tests` {fsql_s:.2f} s (one query per test, SQL and samples each), "
        f"one hand-written DuckDB query computing every count {hand_s:.2f} s: **ratio {fsql_s / hand_s:.2f}**.\n"
        f"{NOTE_END}"
    )
    print(note)
    if args.write:
        write_note(note, NOTE_BEGIN, NOTE_END)


if __name__ == "__main__":
    main(sys.argv[1:])
