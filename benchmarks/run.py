"""Training-set benchmark: fsql against a hand-written DuckDB ASOF query on the same data.

    python benchmarks/run.py [--scale small|default|large] [--reps N]

Generates the scale's data, writes a two-view fsql project into a temp dir, checks that
fsql and the hand-written query (two forms of the created-time tie-break) return the same
rows, then times each side in a child process of its own (interleaved, alternating order),
compares fsql with the faster hand-written form, and updates RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import datagen
import duckdb
import pyarrow as pa
import report
import workloads
from child import COMPILED_SQL

HERE = Path(__file__).resolve().parent
SIDES = ("fsql", "fsql_sql", *workloads.HAND_FORMS)
DEFAULT_REPS = {"small": 5, "default": 5, "large": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(datagen.SCALES), default="default")
    parser.add_argument("--reps", type=int, help="timed runs per side (default 5; 3 at large)")
    args = parser.parse_args()
    args.reps = args.reps or DEFAULT_REPS[args.scale]
    scale = datagen.SCALES[args.scale]
    print(f"generating {scale.name}: {scale.spine_rows:,} spine rows, 2 views x {scale.view_rows:,} rows")
    data, generate_s = datagen.generate(scale)
    with tempfile.TemporaryDirectory(prefix="fsql-bench-") as folder:
        project_dir = workloads.write_project(Path(folder), data)
        verify(project_dir, data)
        baseline = run_child("baseline", scale.name, project_dir)
        runs = timed_runs(scale.name, project_dir, args.reps)
    record = summarize(runs, scale, args, generate_s, baseline)
    record["ties"] = datagen.tie_count(data.driver_stats)
    report.save(record)
    print_summary(record)
    print(f"updated {report.RESULTS_MD.relative_to(HERE.parent)}")


def verify(project_dir: Path, data: datagen.Dataset) -> None:
    """Run both sides once (also warms the file cache) and fail loudly unless they agree."""
    ours, _ = workloads.run_fsql(project_dir, data)
    for form in workloads.HAND_FORMS:
        theirs, _ = workloads.run_sql(workloads.hand_sql(data, form))
        problems = differences(ours, theirs)
        if problems:
            raise SystemExit(f"fsql and the hand-written query ({form}) disagree: " + "; ".join(problems))
    compiled = next((project_dir / "target" / "run").rglob("*.sql"))  # the SQL training_set() ran
    shutil.copy(compiled, project_dir / COMPILED_SQL)
    print(f"checked: fsql and both hand-written forms agree on all {ours.num_rows:,} rows")


def differences(ours: pa.Table, theirs: pa.Table) -> list[str]:
    if ours.schema != theirs.schema:
        return [f"schemas differ:\n{ours.schema}\nvs\n{theirs.schema}"]
    con = duckdb.connect()
    try:
        con.register("ours", ours)
        con.register("theirs", theirs)
        [(only_ours,)] = con.execute("SELECT count(*) FROM (FROM ours EXCEPT ALL FROM theirs)").fetchall()
        [(only_theirs,)] = con.execute("SELECT count(*) FROM (FROM theirs EXCEPT ALL FROM ours)").fetchall()
    finally:
        con.close()
    problems = [f"{ours.num_rows:,} rows vs {theirs.num_rows:,}"] if ours.num_rows != theirs.num_rows else []
    if only_ours or only_theirs:
        problems.append(f"{only_ours:,} rows only in fsql's result, {only_theirs:,} only in the hand-written one")
    return problems


def run_child(side: str, scale: str, project_dir: Path) -> dict[str, float]:
    """One measurement in a fresh process, which reports its own seconds and peak RSS."""
    command = [sys.executable, str(HERE / "child.py"), side, scale, str(project_dir)]
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if child.returncode != 0:
        raise SystemExit(f"the {side} measurement failed (exit {child.returncode})")
    result: dict[str, float] = json.loads(child.stdout)
    return result


def timed_runs(scale: str, project_dir: Path, reps: int) -> dict[str, list[dict[str, float]]]:
    """`reps` rounds; each round runs every side once, in alternating order."""
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for rep in range(reps):
        for side in SIDES if rep % 2 == 0 else reversed(SIDES):
            result = run_child(side, scale, project_dir)
            runs[side].append(result)
            print(
                f"  round {rep + 1}/{reps}  {side:<8} {result['seconds']:.3f} s  {result['cpu_s']:.3f} CPU s"
                f"  {result['peak_rss_mib']:,.0f} MiB"
            )
    return runs


def summarize(
    runs: dict[str, list[dict[str, float]]],
    scale: datagen.Scale,
    args: argparse.Namespace,
    generate_s: float,
    baseline: dict[str, float],
) -> dict[str, Any]:
    sides = {}
    for side, results in runs.items():
        seconds = [r["seconds"] for r in results]
        median = statistics.median(seconds)
        sides[side] = {
            "median_s": median,
            "min_s": min(seconds),
            "max_s": max(seconds),
            "rows_per_s": scale.spine_rows / median,
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
            "runs_s": seconds,
        }
    hand = min(workloads.HAND_FORMS, key=lambda form: sides[form]["median_s"])  # the faster form
    command = "python benchmarks/run.py" + ("" if scale.name == "default" else f" --scale {scale.name}")
    command += "" if args.reps == DEFAULT_REPS[scale.name] else f" --reps {args.reps}"
    return {
        "scale": scale.name,
        "date": report.now(),
        "command": command,
        "reps": args.reps,
        "sizes": {"spine_rows": scale.spine_rows, "view_rows": scale.view_rows, "entities": scale.entities},
        "sides": sides,
        "hand": hand,
        "ratio": sides["fsql"]["median_s"] / sides[hand]["median_s"],
        "ratio_sql": sides["fsql_sql"]["median_s"] / sides[hand]["median_s"],
        "ratio_min": sides["fsql"]["min_s"] / sides[hand]["min_s"],
        "ratio_cpu": sides["fsql"]["cpu_s"] / sides[hand]["cpu_s"],
        "load_avg": [round(x, 1) for x in os.getloadavg()],
        "baseline_rss_mib": baseline["peak_rss_mib"],
        "generate_s": generate_s,
        "machine": report.machine(),
        "versions": report.versions(),
    }


def print_summary(record: dict[str, Any]) -> None:
    print(f"\n{record['scale']}: median of {record['reps']} runs per side")
    for side, m in record["sides"].items():
        print(
            f"  {report.SIDE_LABELS[side]:<36} {m['median_s']:7.3f} s  {m['rows_per_s']:>12,.0f} spine rows/s"
            f"  {m['cpu_s']:7.3f} CPU s  {m['peak_rss_mib']:7,.0f} MiB peak RSS"
        )
    verdict = "meets" if record["ratio"] <= 1.1 else "MISSES"
    print(f"  ratio fsql / faster hand-written ({record['hand']}): {record['ratio']:.2f} ({verdict} the goal <= 1.1)")
    print(f"  ratio fsql's SQL alone / hand-written: {record['ratio_sql']:.2f}")
    print(f"  ratio of the fastest runs: {record['ratio_min']:.2f}; of CPU seconds: {record['ratio_cpu']:.2f}")


if __name__ == "__main__":
    main()
