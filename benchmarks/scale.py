"""How a DuckDB training set's cost grows with the work, each dimension grown alone (issue 12).

    python benchmarks/scale.py [--quick] [--reps 3] [--memory-limit 3GB] [--big-view-rows N]
                               [--only spine,view_rows,views,features] [--write] [--keep-data]

From a base of 100k spine rows, 2 views, 1M rows a view, 5 features a view (10k entities, one
join key, events at microsecond resolution over 2025, ttl 30 days), one dimension at a time:
spine rows 100k / 1M / 10M; view rows 1M / 10M / 100M (`--big-view-rows` changes the last);
views in the service 2 / 10 / 30; features per view 5 / 100. Every point runs `fsql.load_project
(dir).training_set(service=..., spine=file)` end to end in a child process of its own, under a
memory limit that fsql sets from the project's profiles.yml (`settings: {memory_limit: ...}`,
default 3GB, below the 100M-row point's data); the child reports wall and CPU seconds, its peak
RSS (VmHWM: the high-water mark of its own address space; ru_maxrss of the child as well) and the
most DuckDB had spilled at once under target/duckdb_tmp (sampled every 0.1 s). Points run
interleaved, `--reps` times (the largest view-rows point once), and the median is reported. The
exponent of each dimension is the slope of a least-squares fit of log(time) on log(size), over
all its points and between its two largest.

Data: parquet written by DuckDB SQL (`hash` of the row number and a salt, so a seed gives the same
rows) under a scratch directory (default benchmarks/data/scale/, git-ignored); files of 10M rows or
more are deleted at the end unless --keep-data. `--quick` is a smoke run (every dimension at 1/100
the sizes, one rep). `--write` replaces the "Scale" section of RESULTS.md (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / "data" / "scale"
RESULTS_MD = HERE / "RESULTS.md"
BEGIN = "<!-- scale.py: begin -->"
END = "<!-- scale.py: end -->"
SERVICE = "svc"
TTL_DAYS = 30
ENTITIES = 10_000
YEAR_START = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
YEAR_MICROS = 365 * 86_400 * 1_000_000
BIG_FILE_ROWS = 10_000_000


@dataclass(frozen=True)
class Point:
    """One training set: spine rows, views in the service, rows per view, features per view."""

    dimension: str
    spine: int
    views: int
    view_rows: int
    features: int

    @property
    def size(self) -> int:
        return {"spine": self.spine, "view_rows": self.view_rows, "views": self.views, "features": self.features}[
            self.dimension
        ]

    @property
    def label(self) -> str:
        return f"{self.spine:,} spine x {self.views} views x {self.view_rows:,} rows x {self.features} features"


def points(*, quick: bool, big_view_rows: int, only: set[str]) -> list[Point]:
    div = 100 if quick else 1
    base = {"spine": 100_000 // div, "views": 2, "view_rows": 1_000_000 // div, "features": 5}
    grid = {
        "spine": [100_000 // div, 1_000_000 // div, 10_000_000 // div],
        "view_rows": [1_000_000 // div, 10_000_000 // div, big_view_rows // div],
        "views": [2, 10, 30],
        "features": [5, 100],
    }
    found = []
    for dimension, sizes in grid.items():
        if dimension in only:
            found += [Point(dimension, **{**base, dimension: size}) for size in sizes]
    return found


# ---------------------------------------------------------------- data

# rnd(i, salt, m): a pseudo-random BIGINT in [0, m); salts 2^40 apart (see datagen.py).
_MACRO = "CREATE OR REPLACE TEMP MACRO rnd(i, salt, m) AS (hash(i + salt * 1099511627776) % m)::BIGINT"


def spine_file(rows: int, seed: int) -> Path:
    return SCRATCH / f"spine_{rows}_s{seed}.parquet"


def view_file(index: int, rows: int, features: int, seed: int) -> Path:
    return SCRATCH / f"view{index}_{rows}_{features}_s{seed}.parquet"


def spine_sql(rows: int, seed: int, entities: int = ENTITIES, *, last_days: int = 365) -> str:
    """The spine; its times spread over the last `last_days` days of 2025."""
    salt = seed * 1000
    start = f"{YEAR_START} + INTERVAL {365 - last_days} DAY"
    return (
        f"SELECT i AS request_id, rnd(i, {salt + 1}, {entities}) AS entity_id, "
        f"{start} + to_microseconds(rnd(i, {salt + 2}, {last_days * 86_400_000_000})) AS event_timestamp, "
        f"rnd(i, {salt + 3}, 2) = 1 AS label FROM range({rows}) t(i)"
    )


def view_sql(index: int, rows: int, features: int, seed: int, entities: int = ENTITIES) -> str:
    salt = seed * 1000 + 10 + index * 200  # 200 salts a view: key, time and up to 198 features
    values = ", ".join(f"rnd(i, {salt + 2 + k}, 1000000)::DOUBLE / 1e6 AS v{index}_f{k}" for k in range(features))
    return (
        f"SELECT rnd(i, {salt}, {entities}) AS entity_id, "
        f"{YEAR_START} + to_microseconds(rnd(i, {salt + 1}, {YEAR_MICROS})) AS event_ts, {values} "
        f"FROM range({rows}) t(i)"
    )


def write_parquet(path: Path, select: str) -> float:
    """Write `select` to `path` unless it exists; returns the seconds taken (0 when reused)."""
    import duckdb

    if path.exists():
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": "4GB", "temp_directory": str(SCRATCH / "gen_tmp")})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(_MACRO)
        partial = path.with_suffix(".partial")
        con.execute(f"COPY ({select}) TO '{partial}' (FORMAT parquet)")
        partial.rename(path)
    finally:
        con.close()
    return time.perf_counter() - started


def generate(point: Point, seed: int) -> float:
    seconds = write_parquet(spine_file(point.spine, seed), spine_sql(point.spine, seed))
    for index in range(point.views):
        path = view_file(index, point.view_rows, point.features, seed)
        seconds += write_parquet(path, view_sql(index, point.view_rows, point.features, seed))
    return seconds


# ---------------------------------------------------------------- the fsql project of a point


def write_project(folder: Path, point: Point, seed: int, memory_limit: str) -> Path:
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "fsql_project.yml").write_text("name: scale\ndialect: duckdb\n")
    (folder / "profiles.yml").write_text(
        'scale:\n  target: dev\n  outputs:\n    dev:\n      offline: "duckdb:///:memory:"\n'
        f"      settings: {{memory_limit: {memory_limit}}}\n"
    )
    paths = [view_file(v, point.view_rows, point.features, seed) for v in range(point.views)]
    (folder / "definitions" / "scale.yml").write_text(definitions_yaml(paths, point.features))
    return folder


def definitions_yaml(paths: list[Path], features: int, ttl_days: int = TTL_DAYS) -> str:
    lines = ["entities:", "  - {name: entity, join_keys: [{name: entity_id, type: bigint}]}", "sources:"]
    for v, path in enumerate(paths):
        columns = ", ".join(f"v{v}_f{k}: double" for k in range(features))
        lines += [
            f"  - name: src{v}",
            f"    path: {path}",
            "    timestamp: event_ts",
            f"    columns: {{entity_id: bigint, event_ts: timestamptz, {columns}}}",
        ]
    lines.append("feature_views:")
    for v in range(len(paths)):
        listed = ", ".join(f"{{name: v{v}_f{k}, type: double}}" for k in range(features))
        lines += [
            f"  - name: view{v}",
            "    entities: [entity]",
            f"    source: src{v}",
            f"    ttl: {ttl_days}d",
            f"    features: [{listed}]",
        ]
    views = ", ".join(f"view{v}" for v in range(len(paths)))
    lines += ["feature_services:", f"  - name: {SERVICE}", f"    features: [{views}]", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the child: one measurement


def child(project_dir: Path, spine: Path) -> None:
    """Run one training set, print one JSON line of figures."""
    import fsql

    temp = project_dir / "target" / "duckdb_tmp"
    spilled = {"max": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            spilled["max"] = max(spilled["max"], _dir_bytes(temp))
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    table = fsql.load_project(project_dir, data_checks=False).training_set(service=SERVICE, spine=str(spine))
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    stop.set()
    watcher.join()
    figures = {
        "seconds": seconds,
        "cpu_s": cpu,
        "rows": table.num_rows,
        "columns": table.num_columns,
        "peak_rss_mib": _vm_hwm_mib(),
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "result_mib": table.nbytes / 2**20,
        "spilled_mib": spilled["max"] / 2**20,
    }
    print(json.dumps(figures))


def _dir_bytes(folder: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vm_hwm_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kib) / 1024


def run_child(project_dir: Path, spine: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "child", str(project_dir), str(spine)]
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"failed": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"], "load": load_before}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load"] = max(load_before, os.getloadavg()[0])
    return figures


# ---------------------------------------------------------------- the run


def check_point(project_dir: Path, point: Point, seed: int, memory_limit: str) -> None:
    """fsql against a hand-written ASOF per view on a sample of the spine: equal, or stop."""
    import duckdb

    import fsql

    sample = SCRATCH / f"check_{point.spine}_s{seed}.parquet"
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(SCRATCH / "check_tmp")})
    con.execute("SET TimeZone = 'UTC'")
    spine = spine_file(point.spine, seed)
    con.execute(f"COPY (SELECT * FROM '{spine}' USING SAMPLE 2000 ROWS (reservoir, 1)) TO '{sample}'")
    ours = fsql.load_project(project_dir, data_checks=False).training_set(service=SERVICE, spine=str(sample))
    select, joins = ["s.*"], []
    for v in range(min(point.views, 3)):
        for k in range(point.features):
            within = f"d{v}.event_ts >= s.event_timestamp - INTERVAL {TTL_DAYS} DAY"
            select.append(f"CASE WHEN {within} THEN d{v}.v{v}_f{k} END AS v{v}_f{k}")
        path = view_file(v, point.view_rows, point.features, seed)
        joins.append(
            f"ASOF LEFT JOIN '{path}' d{v} ON s.entity_id = d{v}.entity_id AND s.event_timestamp >= d{v}.event_ts"
        )
    hand = con.sql(f"SELECT {', '.join(select)} FROM '{sample}' s {' '.join(joins)}").to_arrow_table()
    con.register("ours", ours.select(hand.column_names))
    con.register("hand", hand)
    both_ways = "(FROM ours EXCEPT ALL FROM hand) UNION ALL (FROM hand EXCEPT ALL FROM ours)"
    differ = con.sql(f"SELECT count(*) FROM ({both_ways})")
    [(count,)] = differ.fetchall()
    con.close()
    sample.unlink()
    if count or ours.num_rows != hand.num_rows:
        raise SystemExit(f"{point.label}: fsql and the hand-written ASOF differ in {count} rows of the sample")


def fit(sizes: list[float], seconds: list[float]) -> float:
    xs = [math.log(x) for x in sizes]
    ys = [math.log(y) for y in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every size / 100, one rep: a smoke run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit set through profiles.yml")
    parser.add_argument("--big-view-rows", type=int, default=100_000_000, help="the largest view-rows point")
    parser.add_argument("--only", default="spine,view_rows,views,features")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="replace the Scale section of RESULTS.md")
    parser.add_argument("--keep-data", action="store_true", help="keep the files of 10M rows or more")
    parser.add_argument("--out", type=Path, default=SCRATCH / "scale.json", help="raw figures (JSON)")
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "render":  # scale.py render RUN.json [--write]
        rerender(Path(sys.argv[2]), write="--write" in sys.argv)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "feast":
        import feast_case

        feast_case.main(sys.argv[2:])
        return
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    chosen = points(quick=args.quick, big_view_rows=args.big_view_rows, only=set(args.only.split(",")))
    started = time.time()
    args.git = _git_rev()
    runs: dict[Point, list[dict[str, Any]]] = {p: [] for p in chosen}
    projects: dict[Point, Path] = {}
    generated = 0.0
    for point in chosen:
        print(f"data for {point.label}", flush=True)
        generated += generate(point, args.seed)
        folder = SCRATCH / "projects" / f"{point.dimension}_{point.size}"
        shutil.rmtree(folder, ignore_errors=True)
        projects[point] = write_project(folder, point, args.seed, args.memory_limit)
        check_point(projects[point], point, args.seed, args.memory_limit)
    print(f"generated in {generated:.0f} s; checked every point on a 2,000-row sample of its spine", flush=True)
    big = max((p for p in chosen if p.dimension == "view_rows"), key=lambda p: p.view_rows, default=None)
    for rep in range(reps):
        order = chosen if rep % 2 == 0 else chosen[::-1]
        for point in order:
            if rep > 0 and point == big and point.view_rows >= 50_000_000:
                continue  # the largest point runs once
            figures = run_child(projects[point], spine_file(point.spine, args.seed))
            runs[point].append(figures)
            shown = figures.get("failed") or (
                f"{figures['seconds']:.2f} s, peak RSS {figures['peak_rss_mib']:,.0f} MiB, "
                f"spilled {figures['spilled_mib']:,.0f} MiB"
            )
            print(f"rep {rep + 1} {point.label}: {shown} (load {figures['load']:.2f})", flush=True)
    record = summarize(runs, args, started, generated)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    text = render(record)
    print(text)
    if args.write and not args.quick:
        write_section(RESULTS_MD, text)
    if not args.keep_data:
        for path in SCRATCH.glob("*.parquet"):
            if _rows_in_name(path) >= BIG_FILE_ROWS:
                path.unlink()


def _git_rev() -> str:
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "../fsql"], cwd=HERE, capture_output=True, text=True)
    return git.stdout.strip() + (" + uncommitted changes in fsql/" if dirty.stdout.strip() else "")


def rerender(path: Path, *, write: bool) -> None:
    """Render RESULTS.md's section again from a run's JSON (fits recomputed)."""
    record = json.loads(path.read_text())
    record["fits"] = fit_dimensions(record["points"])
    path.write_text(json.dumps(record, indent=2))
    text = render(record)
    print(text)
    if write:
        write_section(RESULTS_MD, text)


def _rows_in_name(path: Path) -> int:
    return int(path.stem.split("_")[1])


def fit_dimensions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dimension: the exponent of wall and of CPU seconds, over all points and the two largest."""
    fits = {}
    for dimension in dict.fromkeys(r["dimension"] for r in rows):
        done = [r for r in rows if r["dimension"] == dimension and "seconds" in r]
        if len(done) >= 2:
            sizes = [r["size"] for r in done]
            wall, cpu = [r["seconds"] for r in done], [r["cpu_s"] for r in done]
            fits[dimension] = {
                "all": fit(sizes, wall),
                "last_two": fit(sizes[-2:], wall[-2:]),
                "cpu_all": fit(sizes, cpu),
                "cpu_last_two": fit(sizes[-2:], cpu[-2:]),
                "sizes": sizes,
            }
    return fits


def summarize(
    runs: dict[Point, list[dict[str, Any]]], args: argparse.Namespace, started: float, generated: float
) -> dict[str, Any]:
    rows = []
    for point, figures in runs.items():
        ok = [f for f in figures if "failed" not in f]
        entry: dict[str, Any] = {**asdict(point), "size": point.size, "runs": len(figures)}
        entry["failed"] = len(figures) - len(ok)
        if figures and not ok:
            entry["error"] = figures[-1]["failed"]
        if ok:
            for key in ("seconds", "cpu_s", "peak_rss_mib", "ru_maxrss_mib", "result_mib", "spilled_mib"):
                entry[key] = statistics.median(f[key] for f in ok)
            entry["min_s"] = min(f["seconds"] for f in ok)
            entry["max_s"] = max(f["seconds"] for f in ok)
            entry["load"] = statistics.median(f["load"] for f in ok)
            entry["rows"] = ok[0]["rows"]
        rows.append(entry)
    fits = fit_dimensions(rows)
    with open("/proc/meminfo") as info:
        mem_kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    with open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown")
    import duckdb

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": (time.time() - started) / 60,
        "machine": f"{os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.1f} GiB RAM",
        "versions": f"python {platform.python_version()}, duckdb {duckdb.__version__}",
        "git": args.git,
        "memory_limit": args.memory_limit,
        "reps": 1 if args.quick else args.reps,
        "quick": args.quick,
        "generated_s": generated,
        "load_end": os.getloadavg(),
        "points": rows,
        "fits": fits,
    }


DIMENSION_NAMES = {
    "spine": "spine rows",
    "view_rows": "rows per view",
    "views": "views in the service",
    "features": "features per view",
}


def render(record: dict[str, Any]) -> str:
    load = " / ".join(f"{x:.1f}" for x in record["load_end"])
    lines = [
        BEGIN,
        f"## Scale: {record['date']} (`benchmarks/scale.py`)",
        "",
        f"Machine: {record['machine']}, shared with other jobs. {record['versions']}, fsql git {record['git']}. "
        f"Every point: `training_set()` end to end in a child process of its own under `settings: "
        f"{{memory_limit: {record['memory_limit']}}}` from profiles.yml; median of {record['reps']} interleaved "
        f"runs (the largest view-rows point once); load average (1 min) beside each; at the end "
        f"{load} (1 / 5 / 15 min). 10k entities, ttl 30 days, one double per feature. Every point was "
        f"checked equal to a hand-written ASOF join (first 3 views) on a 2,000-row sample of its spine. "
        f"The run took {record['minutes']:.0f} min ({record['generated_s']:.0f} s of it writing parquet).",
        "",
        "| dimension | spine rows | views | rows per view | features per view | median s | min-max s | CPU s "
        "| peak RSS MiB | result MiB | spilled MiB | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["points"]:
        head = f"| {DIMENSION_NAMES[r['dimension']]} | {r['spine']:,} | {r['views']} | {r['view_rows']:,} "
        head += f"| {r['features']} "
        if "seconds" not in r:
            lines.append(head + f"| failed: {r.get('error')} | | | | | | |")
            continue
        lines.append(
            head + f"| {r['seconds']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['peak_rss_mib']:,.0f} | {r['result_mib']:,.0f} | {r['spilled_mib']:,.0f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        "Exponent of each dimension: slope of log(median seconds) on log(size) by least squares; 1 is linear. "
        "On a loaded machine CPU seconds (user + system, all threads) are the steadier figure.",
        "",
        "| dimension | sizes | wall s: all points | wall s: two largest | CPU s: all points | CPU s: two largest |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for dimension, f in record["fits"].items():
        sizes = ", ".join(f"{s:,}" for s in f["sizes"])
        lines.append(
            f"| {DIMENSION_NAMES[dimension]} | {sizes} | {f['all']:.2f} | {f['last_two']:.2f} | {f['cpu_all']:.2f} "
            f"| {f['cpu_last_two']:.2f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace this script's section of RESULTS.md, or add it at the end (below run.py's keep marker)."""
    old = path.read_text()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


if __name__ == "__main__":
    main()
