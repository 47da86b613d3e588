"""Windowed aggregates offline: fsql's training set against hand-written DuckDB and pandas.

    python benchmarks/aggregates.py [--scale 1.0] [--reps 3] [--pandas-scale S] [--write]

At scale 1: 5M events and 500k spine rows, windows 1h/1d/7d/30d with count, sum, avg and max
of `amount`, at two key distributions (50k keys with ~100 events each; 5k hot keys with ~1,000
each). Data is generated deterministically into parquet in a temp dir. Sides, each checked
equal to fsql row for row (sorted by spine row, floats to 1e-9 relative) before any timing:
- fsql: `load_project(...).training_set(service=..., spine=...)` on a temporary project, with
  four windows, and with the 30d window alone (`fsql_1w`: what four windows cost over one);
- range_join, union_frames, cumulative: the three hand-written shapes (agg_workloads.py);
- pandas: groupby-rolling with closed='left', at --pandas-scale (default: --scale) with fsql
  measured again on that data for the ratio.
Every figure is the median of --reps runs, interleaved (alternating order), in this process.
`--write` replaces the "Windowed aggregates" section of RESULTS.md (needs --scale 1).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agg_workloads as w
import pyarrow as pa
import report

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- aggregates.py: begin -->"
END = "<!-- aggregates.py: end -->"
DUCKDB_SIDES = ("fsql", "fsql_1w", *w.HAND_SHAPES, *w.EXACT_FUNCTIONS, "range_join_exact")
LABELS = {
    "fsql": "fsql `training_set()`, 4 windows",
    "fsql_1w": "fsql `training_set()`, 30d window only",
    "range_join": "hand: range join grouped by spine row",
    "union_frames": "hand: UNION + RANGE frames",
    "cumulative": "hand: cumulative sums + ASOF (max by range join)",
    "pandas": "pandas groupby-rolling",
    "fsql_exact": "fsql, count + sum + avg of integer `cents` (running totals), 4 windows",
    "fsql_exact_max": "fsql, the same + max of `cents` (max by range join), 4 windows",
    "range_join_exact": "hand: range join, count + sum + avg only (what running totals replace)",
}


def differences(ours: pa.Table, theirs: pa.Table, columns: list[str]) -> list[str]:
    """Row-for-row comparison after sorting by row_id: exact for ints and times, 1e-9 relative for floats."""
    if ours.num_rows != theirs.num_rows:
        return [f"{ours.num_rows:,} rows vs {theirs.num_rows:,}"]
    ours, theirs = (t.sort_by("row_id") for t in (ours, theirs))
    problems = []
    for name in ["row_id", "user_id", "event_timestamp", *columns]:
        a, b = ours.column(name).to_pylist(), theirs.column(name).to_pylist()
        bad = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if not _same(x, y)]
        if bad:
            i = bad[0]
            problems.append(f"{name}: {len(bad):,} rows differ, e.g. row_id {ours['row_id'][i]}: {a[i]!r} vs {b[i]!r}")
    return problems


def _same(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0)
    return bool(x == y)


def exact_differences(floats: pa.Table, cents: pa.Table, functions: tuple[str, ...]) -> list[str]:
    """The integer sides against fsql's float one: the same counts, and cents = 100 x amount to 1e-9."""
    scaled = floats
    for name in w.feature_names(functions=("amount_sum", "amount_avg", "amount_max")):
        index = scaled.schema.get_field_index(name)
        values = [None if v is None else v * 100 for v in scaled.column(name).to_pylist()]
        scaled = scaled.set_column(index, name.replace("amount", "cents"), pa.array(values, pa.float64()))
    return differences(scaled, cents, w.feature_names(functions=functions))


def check(project: Path, data: w.Dataset, *, with_pandas: bool = True) -> dict[str, pa.Table]:
    """Every side once (this also warms the file cache); SystemExit unless all agree with fsql."""
    results = {"fsql": w.run_fsql(project, data, w.SERVICES["fsql"])}
    sides: dict[str, Callable[[], pa.Table]] = {
        "fsql_1w": lambda: w.run_fsql(project, data, w.SERVICES["fsql_1w"]),
        **{name: (lambda shape=shape: w.run_sql(shape(data))) for name, shape in w.HAND_SHAPES.items()},
    }
    if with_pandas:
        sides["pandas"] = lambda: w.run_pandas(data)
    for side in w.EXACT_FUNCTIONS:
        results[side] = w.run_fsql(project, data, w.SERVICES[side])
        problems = exact_differences(results["fsql"], results[side], w.EXACT_FUNCTIONS[side])
        if problems:
            raise SystemExit(f"fsql and {side} disagree: " + "; ".join(problems))
    results["range_join_exact"] = w.run_sql(w.range_join_exact_sql(data))
    exact_columns = w.feature_names(functions=w.EXACT_RANGE_FUNCTIONS)
    problems = differences(results["fsql"], results["range_join_exact"], exact_columns)
    if problems:
        raise SystemExit("fsql and range_join_exact disagree: " + "; ".join(problems))
    for side, run in sides.items():
        results[side] = run()
        columns = w.feature_names((w.WIDEST,) if side == "fsql_1w" else tuple(w.WINDOWS))
        problems = differences(results["fsql"], results[side], columns)
        if problems:
            raise SystemExit(f"fsql and {side} disagree: " + "; ".join(problems))
    return results


def runner(side: str, project: Path, data: w.Dataset) -> Callable[[], pa.Table]:
    if side in w.SERVICES:
        return lambda: w.run_fsql(project, data, w.SERVICES[side])
    if side == "pandas":
        return lambda: w.run_pandas(data)
    if side == "range_join_exact":
        return lambda: w.run_sql(w.range_join_exact_sql(data))
    return lambda: w.run_sql(w.HAND_SHAPES[side](data))


def timed_runs(sides: tuple[str, ...], project: Path, data: w.Dataset, reps: int, tag: str) -> dict[str, float]:
    runs: dict[str, list[float]] = {side: [] for side in sides}
    for rep in range(reps):
        for side in sides if rep % 2 == 0 else tuple(reversed(sides)):
            _, seconds = w.timed(runner(side, project, data))
            runs[side].append(seconds)
            print(f"  {tag} round {rep + 1}/{reps}  {side:<13} {seconds:7.2f} s", flush=True)
    return {side: statistics.median(s) for side, s in runs.items()}


def measure(dist: w.Distribution, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    data = w.generate(folder / dist.name, dist, args.scale)
    project = w.write_project(folder / f"{dist.name}-project", data)
    same_scale = args.pandas_scale == args.scale
    check(project, data, with_pandas=same_scale)
    print(
        f"{dist.name}: {data.event_rows:,} events, {data.spine_rows:,} spine rows, {data.keys:,} keys: agree",
        flush=True,
    )
    sides = DUCKDB_SIDES + (("pandas",) if same_scale else ())
    medians = timed_runs(sides, project, data, args.reps, dist.name)
    record: dict[str, Any] = {
        "label": dist.label,
        "events": data.event_rows,
        "spine": data.spine_rows,
        "keys": data.keys,
        "medians": medians,
    }
    if not same_scale:
        small = w.generate(folder / f"{dist.name}-pandas", dist, args.pandas_scale)
        small_project = w.write_project(folder / f"{dist.name}-pandas-project", small)
        check(small_project, small)
        print(f"{dist.name} at scale {args.pandas_scale}: pandas agrees with fsql")
        record["pandas_scale"] = args.pandas_scale
        record["pandas_medians"] = timed_runs(("fsql", "pandas"), small_project, small, args.reps, dist.name + "-pd")
    return record


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    m = r["medians"]
    fastest = min(w.HAND_SHAPES, key=lambda side: m[side])
    pandas = r.get("pandas_medians", m)
    return {
        "fastest": fastest,
        "fsql_over_fastest": m["fsql"] / m[fastest],
        "pandas_over_fsql": pandas["pandas"] / pandas["fsql"],
        "four_over_one": m["fsql"] / m["fsql_1w"],
        "pandas_over_exact": {side: m["pandas"] / m[side] for side in w.EXACT_FUNCTIONS if "pandas" in m},
    }


def render(records: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    box = report.machine()
    used = ", ".join(f"{name} {value}" for name, value in report.versions().items())
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        BEGIN,
        "## Windowed aggregates",
        "",
        f"Run {report.now()}: `python benchmarks/aggregates.py --write"
        + (f" --pandas-scale {args.pandas_scale}`" if args.pandas_scale != args.scale else "`")
        + f", median of {args.reps} runs per side, interleaved, in one process. Machine: {box['nproc']} cores "
        f"({box['cpu']}), {box['memory_gib']} GiB RAM, shared with other work (load average "
        f"at the end {load}, 1 / 5 / 15 min). Versions: {used}.",
        "",
        "5M events, 500k spine rows (20 % of them exactly on an event's key and time), windows 1h/1d/7d/30d,",
        "count, sum, avg and max of `amount` (1 % NULL): 16 features. Every side was checked equal to fsql row",
        "for row (sorted by spine row; floats to 1e-9 relative) before timing.",
        "",
        "| side | " + " | ".join(r["label"] for r in records.values()) + " |",
        "|---|" + "---:|" * len(records),
    ]
    for side in (*DUCKDB_SIDES, "pandas"):
        cells = [f"{r['medians'][side]:.2f} s" if side in r["medians"] else _pandas_cell(r) for r in records.values()]
        lines.append(f"| {LABELS[side]} | " + " | ".join(cells) + " |")
    rs = {name: ratios(r) for name, r in records.items()}
    rows = [
        (
            "**fsql / fastest hand-written** (goal <= 1.2)",
            lambda x: f"**{x['fsql_over_fastest']:.2f}** ({x['fastest']})",
        ),
        ("**pandas / fsql** (goal >= 10)", lambda x: f"**{x['pandas_over_fsql']:.1f}**"),
        ("fsql 4 windows / 1 window (must be well under 4)", lambda x: f"{x['four_over_one']:.2f}"),
        (
            "pandas / fsql on integer cents: count+sum+avg; + max",
            lambda x: " ; ".join(f"{v:.1f}" for v in x["pandas_over_exact"].values()),
        ),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(rs[name]) for name in records) + " |")
    lines += ["", END]
    return "\n".join(lines)


def _pandas_cell(r: dict[str, Any]) -> str:
    p = r["pandas_medians"]
    return f"{p['pandas']:.2f} s at scale {r['pandas_scale']} (fsql {p['fsql']:.2f} s there)"


def write(section: str) -> None:
    """Replace (or append) the section below RESULTS.md's keep marker, where run.py leaves text alone."""
    text = report.RESULTS_MD.read_text()
    if BEGIN in text:
        before, _, rest = text.partition(BEGIN)
        text = before + section + rest.partition(END)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    report.RESULTS_MD.write_text(text)


def write_note(note: str, begin: str, end: str) -> None:
    """Replace the block between `begin` and `end`, or put it right after this script's section."""
    text = report.RESULTS_MD.read_text()
    if begin in text:
        before, _, rest = text.partition(begin)
        text = before + note + rest.partition(end)[2]
    elif END in text:
        before, _, rest = text.partition(END)
        text = before + END + "\n\n" + note + rest
    else:
        text = text.rstrip("\n") + "\n\n" + note + "\n"
    report.RESULTS_MD.write_text(text)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of 5M events / 500k spine rows / the key counts")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pandas-scale", type=float, help="run pandas (and fsql for its ratio) at this scale")
    parser.add_argument("--only", choices=sorted(w.DISTRIBUTIONS), help="one distribution")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md (full scale only)")
    args = parser.parse_args(argv)
    args.pandas_scale = args.pandas_scale or args.scale
    if args.write and (args.scale != 1.0 or args.only):
        raise SystemExit("--write records full-scale figures of both distributions: drop --scale and --only")
    records = {}
    with tempfile.TemporaryDirectory(prefix="fsql-agg-bench-") as folder:
        for name, dist in w.DISTRIBUTIONS.items():
            if args.only in (None, name):
                records[name] = measure(dist, args, Path(folder))
    for name, r in records.items():
        print(f"{name}: " + ", ".join(f"{s} {t:.2f} s" for s, t in r["medians"].items()), ratios(r))
    if args.write:
        write(render(records, args))
        print(f"updated {report.RESULTS_MD.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
