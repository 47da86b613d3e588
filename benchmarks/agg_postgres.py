"""Windowed aggregates on Postgres offline: fsql's training set against a hand-written LATERAL query.

    python benchmarks/agg_postgres.py [--dsn postgresql://postgres@127.0.0.1:5432/test]
                                      [--scale 0.1] [--reps 3] [--write]

The data of benchmarks/aggregates.py (sparse keys: ~100 events per key) at --scale (0.1: 500k
events, 50k spine rows), COPYed into a fresh schema with an index on events (user_id, event_ts)
and ANALYZEd. The hand-written side is one LATERAL subquery per spine row over that index:
`e >= t - 30d AND e < t`, count/sum/avg/max FILTERed per window. Both sides run through
fsql's Postgres engine (same fetch to arrow), are checked equal row for row, then timed
interleaved. `--write` adds the figures to the "Windowed aggregates" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import agg_workloads as w
import aggregates
import psycopg
import pyarrow.parquet as pq
from sqlglot import exp

import fsql
from fsql.engines import open_engine
from fsql.engines.postgres import copy_arrow, create_table_sql

NOTE_BEGIN = "<!-- agg_postgres.py: begin -->"
NOTE_END = "<!-- agg_postgres.py: end -->"


def load(dsn: str, schema: str, data: w.Dataset) -> None:
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA").sql("postgres"))
        for name, path in (("events", data.events), ("spine", data.spine)):
            ref = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
            table = pq.read_table(path)
            cursor.execute(create_table_sql(ref, table.schema))
            copy_arrow(cursor, ref, table)
        cursor.execute(f'CREATE INDEX ON "{schema}".events (user_id, event_ts)')
        cursor.execute(f'ANALYZE "{schema}".events')
        cursor.execute(f'ANALYZE "{schema}".spine')


def drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def write_project(folder: Path, dsn: str, schema: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    (folder / "fsql_project.yml").write_text("name: agg_bench\ndialect: postgres\n")
    (folder / "profiles.yml").write_text(f'agg_bench:\n  target: dev\n  outputs:\n    dev:\n      offline: "{url}"\n')
    definitions = w.definitions_text(f"table: {schema}.events")
    (folder / "definitions").mkdir(exist_ok=True)
    (folder / "definitions" / "bench.yml").write_text(definitions)
    return folder


def lateral_sql(schema: str) -> str:
    exprs = {"n": "count(*)", "amount_sum": "sum(amount)", "amount_avg": "avg(amount)", "amount_max": "max(amount)"}
    aggs = [
        f"{exprs[f]} FILTER (WHERE e.event_ts >= s.event_timestamp - interval '{seconds} seconds') AS {f}_{name}"
        for f in w.FUNCTIONS
        for name, seconds in w.WINDOWS.items()
    ]
    widest = w.WINDOWS[w.WIDEST]
    return f"""SELECT s.row_id, s.user_id, s.event_timestamp, a.* FROM "{schema}".spine s
    CROSS JOIN LATERAL (SELECT {", ".join(aggs)} FROM "{schema}".events e
      WHERE e.user_id = s.user_id AND e.event_ts >= s.event_timestamp - interval '{widest} seconds'
        AND e.event_ts < s.event_timestamp) a"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    schema = f"fsql_aggbench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="fsql-agg-pg-") as folder:
        data = w.generate(Path(folder) / "data", w.DISTRIBUTIONS["sparse"], args.scale)
        load(args.dsn, schema, data)
        try:
            project = fsql.load_project(write_project(Path(folder) / "project", args.dsn, schema))
            spine = f'SELECT row_id, user_id, event_timestamp FROM "{schema}".spine'

            def run_fsql():  # type: ignore[no-untyped-def]
                return project.training_set(service=w.SERVICES["fsql"], spine=spine)

            def run_hand():  # type: ignore[no-untyped-def]
                engine = open_engine(project.config.target, project.config.root)
                try:
                    return engine.query_arrow(lateral_sql(schema))
                finally:
                    engine.close()

            problems = aggregates.differences(run_fsql(), run_hand(), w.feature_names())
            if problems:
                raise SystemExit("fsql and the LATERAL query disagree: " + "; ".join(problems))
            print(f"{data.event_rows:,} events, {data.spine_rows:,} spine rows: fsql and LATERAL agree", flush=True)
            runs: dict[str, list[float]] = {"fsql": [], "lateral": []}
            for rep in range(args.reps):
                order = [("fsql", run_fsql), ("lateral", run_hand)]
                for side, run in order if rep % 2 == 0 else order[::-1]:
                    _, seconds = w.timed(run)
                    runs[side].append(seconds)
                    print(f"  round {rep + 1}/{args.reps}  {side:<8} {seconds:7.2f} s", flush=True)
        finally:
            drop(args.dsn, schema)
    fsql_s, hand_s = (statistics.median(runs[s]) for s in ("fsql", "lateral"))
    print(f"fsql {fsql_s:.2f} s, LATERAL {hand_s:.2f} s, ratio {fsql_s / hand_s:.2f} (goal <= 1.5)")
    if args.write:
        note = (
            f"{NOTE_BEGIN}\nPostgres offline (`python benchmarks/agg_postgres.py --write`, {aggregates.report.now()}): "
            f"{data.event_rows:,} events, {data.spine_rows:,} spine rows, {data.keys:,} keys (sparse), 16 features, "
            f"index on events (user_id, event_ts); median of {args.reps}, interleaved: fsql {fsql_s:.2f} s, "
            f"hand-written LATERAL range query {hand_s:.2f} s: **ratio {fsql_s / hand_s:.2f}** (goal <= 1.5); "
            f"checked equal row for row.\n{NOTE_END}"
        )
        aggregates.write_note(note, NOTE_BEGIN, NOTE_END)


if __name__ == "__main__":
    main(sys.argv[1:])
