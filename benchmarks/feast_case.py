"""The case Feast's users report as taking 30 minutes and 50 GB: 17,000 spine rows, 10 views, 1,000 features.

    python benchmarks/scale.py feast [--view-rows 100000] [--entities 1000] [--reps 3] [--timeout 1200]
                                     [--feast-python PATH] [--write]

10 feature views of 100 double features each (one join key, `--view-rows` rows a view, events
at microsecond resolution over 2025, ttl 30 days) and a 17,000-row spine, written as parquet by
scale.py's generator under benchmarks/data/scale/feast/. Sides, each in a child process of its
own, interleaved, median of `--reps`:

- fsql: `training_set()` end to end on DuckDB (scale.py's child; memory_limit 3GB from profiles.yml);
- Feast 0.67: `FeatureStore(repo).get_historical_features(entity_df, features=[1,000 refs]).to_df()`
  on its `file` offline store (Dask), from Feast's own venv (`feast_training_side.py`), the feature
  views registered by `apply` beforehand (not timed). A run is stopped after `--timeout` seconds
  and reported as "did not finish in X"; once one run took more than 5 minutes, it runs once.

Before any timing both results are compared, sorted by request_id: every feature of the first
and last views and the first feature of every view, NULL and NaN taken as equal, values exact.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import scale

HERE = Path(__file__).resolve().parent
FOLDER = scale.SCRATCH / "feast"
SPINE_ROWS = 17_000
VIEWS = 10
FEATURES = 100
SEED = 7
# Feast's file store drops a spine row whose entity has feature rows but none inside the ttl, in any
# view: with 10 views nearly every row would go. So the spine asks about December 2025 and the ttl
# is a year: every entity with a row before its spine time has a candidate in every view.
SPINE_DAYS = 31
TTL_DAYS = 365
MEMORY_CAP_MIB = 10_240  # a Feast run is stopped above this RSS: the machine is shared
BEGIN = "<!-- scale.py feast: begin -->"
END = "<!-- scale.py feast: end -->"
DEFAULT_FEAST_PYTHON = os.environ.get("FSQL_BENCH_FEAST_PYTHON", str(HERE.parent / ".feast-venv" / "bin" / "python"))


def generate(view_rows: int, entities: int) -> tuple[Path, list[Path], float]:
    spine = FOLDER / f"spine_{SPINE_ROWS}_e{entities}_dec.parquet"
    seconds = scale.write_parquet(spine, scale.spine_sql(SPINE_ROWS, SEED, entities, last_days=SPINE_DAYS))
    views = []
    for v in range(VIEWS):
        path = FOLDER / f"view{v}_{view_rows}_e{entities}.parquet"
        seconds += scale.write_parquet(path, scale.view_sql(v, view_rows, FEATURES, SEED, entities))
        views.append(path)
    return spine, views, seconds


def write_fsql_project(views: list[Path], memory_limit: str) -> Path:
    folder = FOLDER / "fsql_project"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "definitions").mkdir(parents=True)
    (folder / "fsql_project.yml").write_text("name: scale\ndialect: duckdb\n")
    (folder / "profiles.yml").write_text(
        'scale:\n  target: dev\n  outputs:\n    dev:\n      offline: "duckdb:///:memory:"\n'
        f"      settings: {{memory_limit: {memory_limit}}}\n"
    )
    (folder / "definitions" / "scale.yml").write_text(scale.definitions_yaml(views, FEATURES, TTL_DAYS))
    return folder


def write_views_json(views: list[Path]) -> Path:
    listed = [
        {
            "name": f"view{v}",
            "path": str(path),
            "features": [f"v{v}_f{k}" for k in range(FEATURES)],
            "ttl_days": TTL_DAYS,
        }
        for v, path in enumerate(views)
    ]
    out = FOLDER / "views.json"
    out.write_text(json.dumps(listed))
    return out


def feast(python: str, command: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """Run Feast's side; stopped (killed) past `timeout` seconds or MEMORY_CAP_MIB of RSS."""
    side = str(HERE / "feast_training_side.py")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    log = FOLDER / f"feast_{command}.log"
    with open(log, "w") as out:
        child = subprocess.Popen([python, side, command, *args], stdout=out, stderr=subprocess.STDOUT, text=True)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, _rss_mib(child.pid))
            elapsed = time.perf_counter() - started
            if (timeout and elapsed > timeout) or peak > MEMORY_CAP_MIB:
                child.kill()
                child.wait()
                return {"timeout": timeout, "stopped_after_s": elapsed, "stopped_rss_mib": peak, "load": load_before}
            time.sleep(0.2)
    text = log.read_text()
    if child.returncode != 0:
        raise SystemExit(f"feast {command} failed:\n{text[-3000:]}")
    if command == "apply":
        return {}
    figures = json.loads(text.strip().splitlines()[-1])
    figures["load"] = max(load_before, os.getloadavg()[0])
    return figures


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) / 1024
    except (OSError, StopIteration):
        return 0.0


def compare(spine: Path, project: Path, feast_out: Path) -> tuple[int, int, int]:
    """(values compared, values that differ, spine rows Feast dropped) between fsql's and Feast's results.

    Feast's file store drops a spine row when its entity has feature rows but none inside the
    ttl (it filters the joined rows, keeping only those whose entity has no rows at all): such
    rows are counted, and the comparison is made on the rows Feast returned.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    import fsql

    ours = fsql.load_project(project, data_checks=False).training_set(service=scale.SERVICE, spine=str(spine))
    theirs = pq.read_table(feast_out)
    if len(set(theirs["request_id"].to_pylist())) != theirs.num_rows or theirs.num_rows > ours.num_rows:
        raise SystemExit(f"Feast gave {theirs.num_rows} rows for {ours.num_rows} spine rows, some twice")
    dropped = ours.num_rows - theirs.num_rows
    ours = ours.filter(pc.is_in(ours["request_id"], value_set=theirs["request_id"])).sort_by("request_id")
    theirs = theirs.sort_by("request_id")
    columns = [f"v0_f{k}" for k in range(FEATURES)] + [f"v{VIEWS - 1}_f{k}" for k in range(FEATURES)]
    columns += [f"v{v}_f0" for v in range(1, VIEWS - 1)]
    compared = differ = 0
    for name in columns:
        for a, b in zip(ours[name].to_pylist(), theirs[name].to_pylist(), strict=True):
            compared += 1
            a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
            b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
            differ += a != b
    nulls = sum(ours[f"v{v}_f0"].null_count for v in range(VIEWS))
    print(f"compared {compared:,} values: {differ} differ; Feast dropped {dropped} spine rows; {nulls:,} NULL")
    return compared, differ, dropped


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="scale.py feast", description=__doc__.split("\n\n")[0])
    parser.add_argument("--view-rows", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds before a Feast run is stopped")
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--feast-python", default=DEFAULT_FEAST_PYTHON)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    started = time.time()
    print(f"data: {SPINE_ROWS:,} spine rows, {VIEWS} views x {args.view_rows:,} rows x {FEATURES} features", flush=True)
    spine, views, generated = generate(args.view_rows, args.entities)
    project = write_fsql_project(views, args.memory_limit)
    views_json = write_views_json(views)
    repo = FOLDER / "feast_repo"
    shutil.rmtree(repo, ignore_errors=True)
    feast(args.feast_python, "apply", "--repo", str(repo), "--views-json", str(views_json))
    out = FOLDER / "feast_result.parquet"
    fetch = ("--repo", str(repo), "--views-json", str(views_json), "--spine", str(spine), "--out", str(out))
    first = feast(args.feast_python, "fetch", *fetch, timeout=args.timeout)
    runs: dict[str, list[dict[str, Any]]] = {"fsql": [], "feast": [first]}
    if "timeout" not in first:
        compared, differ, dropped = compare(spine, project, out)
        if differ:
            raise SystemExit(f"fsql and Feast differ in {differ} of {compared} values: no timing")
    else:
        compared = differ = dropped = 0
    for rep in range(args.reps):
        runs["fsql"].append(scale.run_child(project, spine))
        print(f"rep {rep + 1} fsql: {runs['fsql'][-1]}", flush=True)
        slow = any("timeout" in r or r["seconds"] > 300 for r in runs["feast"])
        if rep > 0 and not slow:  # the first Feast run was the check; it counts as rep 1
            runs["feast"].append(feast(args.feast_python, "fetch", *fetch, timeout=args.timeout))
            print(f"rep {rep + 1} feast: {runs['feast'][-1]}", flush=True)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "view_rows": args.view_rows,
        "entities": args.entities,
        "memory_limit": args.memory_limit,
        "generated_s": generated,
        "compared": compared,
        "differ": differ,
        "dropped": dropped,
        "runs": runs,
        "load_end": os.getloadavg(),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip(),
        "timeout": args.timeout,
    }
    (FOLDER / "feast_case.json").write_text(json.dumps(record, indent=2))
    text = render(record)
    print(text)
    if args.write:
        write_section(scale.RESULTS_MD, text)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs if key in r)


def render(record: dict[str, Any]) -> str:
    fsql_runs, feast_runs = record["runs"]["fsql"], record["runs"]["feast"]
    load = " / ".join(f"{x:.1f}" for x in record["load_end"])
    lines = [
        BEGIN,
        f"### Feast's reported case: {record['date']} (`benchmarks/scale.py feast`)",
        "",
        f"{SPINE_ROWS:,} spine rows, {VIEWS} views x {FEATURES} features (1,000 in all), "
        f"{record['view_rows']:,} rows a view over {record['entities']:,} entities, events over 2025, "
        f"the spine in December 2025, ttl {TTL_DAYS} days. "
        f"Each side in a child process of its own, interleaved; load average at the end {load}; fsql git "
        f"{record['git']}. Before timing, {record['compared']:,} values (every feature of the first and "
        f"last views, the first feature of every view) were compared: {record['differ']} differ. Feast "
        f"returned {SPINE_ROWS - record['dropped']:,} of the {SPINE_ROWS:,} spine rows: it drops a row whose "
        f"entity has feature rows but none within the ttl in some view (fsql gives NULLs there, one row per "
        f"spine row); the comparison is on the rows it returned.",
        "",
        "| side | runs | median s | min-max s | CPU s | peak RSS MiB | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, runs in (
        (f"fsql `training_set()` on DuckDB (memory_limit {record['memory_limit']})", fsql_runs),
        ("Feast 0.67 `get_historical_features().to_df()`, file (Dask) offline store", feast_runs),
    ):
        done = [r for r in runs if "seconds" in r]
        stopped = [r for r in runs if "timeout" in r]
        if not done:
            why = ", ".join(
                f"stopped after {r['stopped_after_s']:.0f} s at {r['stopped_rss_mib']:,.0f} MiB RSS" for r in stopped
            )
            cap = f"{record['timeout']:.0f} s / {MEMORY_CAP_MIB:,} MiB"
            lines.append(f"| {label} | {len(runs)} | did not finish within {cap} ({why}) | | | | |")
            continue
        seconds = [r["seconds"] for r in done]
        lines.append(
            f"| {label} | {len(done)}{f' (+{len(stopped)} stopped)' if stopped else ''} "
            f"| {statistics.median(seconds):.2f} | {min(seconds):.2f}-{max(seconds):.2f} "
            f"| {_median(done, 'cpu_s'):.2f} | {_median(done, 'peak_rss_mib'):,.0f} | {_median(done, 'load'):.1f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    old = path.read_text()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    elif scale.END in old:  # right after the Scale section
        head, rest = old.split(scale.END, 1)
        new = head + scale.END + "\n\n" + text + rest
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


if __name__ == "__main__":
    sys.exit("run it as: python benchmarks/scale.py feast ...")
