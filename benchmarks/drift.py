"""`fsql drift` on two 1M-row training sets (parquet) against hand-written DuckDB SQL computing
the same statistics (null counts, PSI with the same decile bins and epsilon, KS; PSI and
chi-square over categories), checked equal to 1e-9 in every run.

    python benchmarks/drift.py [--rows 1000000] [--runs 3]

The hand-written side uses what DuckDB offers and fsql's portable SQL does not: an ASOF join
to find each value's bin. Prints a markdown table (median seconds of interleaved runs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import fsql
from fsql.drift.model import EPSILON
from fsql.drift.run import Side, run_drift

NUMERIC = ("shifted", "steady", "visits", "sparse")
CATEGORICAL = ("plan", "region")
PROJECT = """entities:
  - name: user
    join_keys: [{name: user_id, type: bigint}]
sources:
  - name: events
    path: data/events.parquet
    timestamp: event_ts
    columns: {user_id: bigint, event_ts: timestamptz, shifted: double, steady: double, visits: bigint,
              plan: string, region: string, sparse: double}
feature_views:
  - name: stats
    entities: [user]
    source: events
    features:
      - {name: shifted, type: double}
      - {name: steady, type: double}
      - {name: visits, type: bigint}
      - {name: plan, type: string}
      - {name: region, type: string}
      - {name: sparse, type: double}
feature_services:
  - name: usage
    features: [stats]
"""


def training_set(rows: int, *, current: bool, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    sparse = rng.normal(10, 3, rows)
    return pa.table(
        {
            "user_id": np.arange(rows),
            "shifted": rng.normal(0.3 if current else 0.0, 1.0, rows),
            "steady": rng.normal(5.0, 2.0, rows),
            "visits": rng.poisson(3, rows),
            "plan": rng.choice(["free", "pro", "team", "max"], rows, p=[0.5, 0.3, 0.15, 0.05]),
            "region": rng.choice([f"r{i}" for i in range(50)], rows),
            "sparse": pa.array(sparse, mask=rng.random(rows) < (0.2 if current else 0.02)),
        }
    )


def hand_written(reference: Path, current: Path) -> str:
    parts, ctes = (
        [],
        [f"r AS (SELECT * FROM read_parquet('{reference}'))", f"c AS (SELECT * FROM read_parquet('{current}'))"],
    )
    for i, x in enumerate(NUMERIC):
        ctes.append(f"""e{i} AS (
  SELECT edge, row_number() OVER (ORDER BY edge) AS bin FROM (
    SELECT DISTINCT x AS edge FROM (
      SELECT {x} AS x, row_number() OVER (ORDER BY {x}) AS rn, count(*) OVER () AS n FROM r WHERE {x} IS NOT NULL
    ) JOIN range(1, 10) k(k) ON rn = (k * n + 9) // 10)),
b{i} AS (
  SELECT side, coalesce(e.bin, 0) AS bin, count(*) AS n FROM (
    SELECT 0 AS side, {x} AS x FROM r WHERE {x} IS NOT NULL UNION ALL SELECT 1, {x} FROM c WHERE {x} IS NOT NULL
  ) v ASOF LEFT JOIN e{i} e ON v.x > e.edge GROUP BY ALL),
s{i} AS (
  SELECT bin, coalesce(sum(n) FILTER (side = 0), 0) AS rn, coalesce(sum(n) FILTER (side = 1), 0) AS cn
  FROM b{i} GROUP BY bin),
k{i} AS (
  SELECT x, coalesce(sum(n) FILTER (side = 0), 0) AS rn, coalesce(sum(n) FILTER (side = 1), 0) AS cn FROM (
    SELECT 0 AS side, {x} AS x, count(*) AS n FROM r WHERE {x} IS NOT NULL GROUP BY {x}
    UNION ALL SELECT 1, {x}, count(*) FROM c WHERE {x} IS NOT NULL GROUP BY {x}) GROUP BY x)""")
        ks = f"""(SELECT max(gap) FROM (
    SELECT abs(sum(rn) OVER w / (SELECT sum(rn) FROM k{i})::DOUBLE
             - sum(cn) OVER w / (SELECT sum(cn) FROM k{i})::DOUBLE) AS gap
    FROM k{i} WINDOW w AS (ORDER BY x ROWS UNBOUNDED PRECEDING)))"""
        parts.append(_psi_row(x, f"s{i}", ks, "NULL"))
    for i, x in enumerate(CATEGORICAL):
        ctes.append(f"""g{i} AS (
  SELECT x, coalesce(sum(n) FILTER (side = 0), 0) AS rn, coalesce(sum(n) FILTER (side = 1), 0) AS cn FROM (
    SELECT 0 AS side, {x} AS x, count(*) AS n FROM r WHERE {x} IS NOT NULL GROUP BY {x}
    UNION ALL SELECT 1, {x}, count(*) FROM c WHERE {x} IS NOT NULL GROUP BY {x}) GROUP BY x)""")
        chi2 = f"""(SELECT sum((rn - rt * (rn + cn) / (rt + ct)) ** 2 / (rt * (rn + cn) / (rt + ct))
                 + (cn - ct * (rn + cn) / (rt + ct)) ** 2 / (ct * (rn + cn) / (rt + ct)))
   FROM g{i}, (SELECT sum(rn)::DOUBLE AS rt, sum(cn)::DOUBLE AS ct FROM g{i}))"""
        parts.append(_psi_row(x, f"g{i}", "NULL", chi2))
    return "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(parts)


def _psi_row(x: str, cells: str, ks: str, chi2: str) -> str:
    share = "CASE WHEN {n} = 0 THEN {eps} ELSE {n} / (SELECT sum({n}) FROM {cells})::DOUBLE END"
    r, c = (share.format(n=n, eps=EPSILON, cells=cells) for n in ("rn", "cn"))
    return f"""SELECT '{x}' AS feature, (SELECT count(*) - count({x}) FROM r) AS r_nulls,
  (SELECT count(*) - count({x}) FROM c) AS c_nulls,
  (SELECT sum(({c} - {r}) * ln(({c}) / ({r}))) FROM {cells}) AS psi, {ks} AS ks, {chi2} AS chi2"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fsql-drift-bench-"))
    (root / "definitions").mkdir()
    (root / "fsql_project.yml").write_text("name: bench\n")
    (root / "definitions" / "defs.yml").write_text(PROJECT)
    reference, current = root / "reference.parquet", root / "current.parquet"
    pq.write_table(training_set(args.rows, current=False, seed=1), reference)
    pq.write_table(training_set(args.rows, current=True, seed=2), current)
    project = fsql.load_project(root, data_checks=False)
    sql = hand_written(reference, current)
    timings: dict[str, list[float]] = {
        "fsql run_drift end to end": [],
        "fsql's drift SQL alone": [],
        "hand-written DuckDB SQL": [],
    }
    for _ in range(args.runs):
        started = time.perf_counter()
        report = run_drift(project, service="usage", reference=Side(file=reference), current=Side(file=current))
        timings["fsql run_drift end to end"].append(time.perf_counter() - started)
        fsql_sql = (root / "target" / "run" / "duckdb" / "drift" / "usage.sql").read_text()
        for name, text in (("fsql's drift SQL alone", fsql_sql), ("hand-written DuckDB SQL", sql)):
            connection = duckdb.connect()
            started = time.perf_counter()
            rows = connection.sql(text).fetchall()
            timings[name].append(time.perf_counter() - started)
            connection.close()
        by_name = {f.feature: f for f in report.features}
        for feature, r_nulls, c_nulls, psi, ks, chi2 in rows:
            found = by_name[feature]
            assert (found.reference_rows - found.reference_values, found.current_rows - found.current_values) == (
                r_nulls,
                c_nulls,
            )
            for ours, theirs in ((found.psi, psi), (found.ks, ks), (found.chi2, chi2)):
                assert (ours is None and theirs is None) or abs(ours - theirs) <= 1e-9, (feature, ours, theirs)
    hand = statistics.median(timings["hand-written DuckDB SQL"])
    print(
        f"{args.rows:,} reference rows x {args.rows:,} current rows, {len(NUMERIC)} numeric + "
        f"{len(CATEGORICAL)} categorical features, {args.runs} runs (statistics equal to 1e-9 in each)\n"
    )
    print("| side | median s | min-max s | ratio to hand-written |\n|---|---:|---:|---:|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {min(values):.2f}-{max(values):.2f} | {median / hand:.2f} |")


if __name__ == "__main__":
    main()
