"""The machine, the versions, and benchmarks/RESULTS.md (rendered from benchmarks/results.json).

Each run replaces its scale's entry in results.json and re-renders RESULTS.md from all
entries. Text below the KEEP marker in RESULTS.md is written by hand and kept as is.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
KEEP = "<!-- Notes below this line are written by hand; run.py keeps them. -->"
SIDE_LABELS = {
    "fsql": "fsql `training_set()` end to end",
    "fsql_sql": "fsql's compiled SQL alone",
    "hand_struct": "hand-written ASOF, struct-pair tie-break",
    "hand_dedup": "hand-written ASOF, dedup (arg_max) first",
}
HAND_SHORT = {"hand_struct": "the struct pair", "hand_dedup": "dedup first"}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as info:
        kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    return {"nproc": os.cpu_count(), "memory_gib": round(kib / 2**20, 1), "cpu": cpu}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    found.update({name: version(name) for name in ("duckdb", "sqlglot", "pyarrow", "fsql")})
    found["fsql git"] = _git_state()
    return found


def _git_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted changes in fsql/" if git("status", "--porcelain", "--", "../fsql") else "")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def save(record: dict[str, Any]) -> None:
    """Store one scale's record and re-render RESULTS.md from every stored record."""
    records = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    records[record["scale"]] = record
    order = ["small", "default", "large"]
    records = dict(sorted(records.items(), key=lambda item: order.index(item[0]) if item[0] in order else 9))
    RESULTS_JSON.write_text(json.dumps(records, indent=2) + "\n")
    notes = RESULTS_MD.read_text().partition(KEEP)[2] if RESULTS_MD.exists() else "\n"
    RESULTS_MD.write_text(render(records) + "\n" + KEEP + notes)


def render(records: dict[str, dict[str, Any]]) -> str:
    latest = max(records.values(), key=lambda r: r["date"])
    box = latest["machine"]
    lines = [
        "# fsql benchmark results",
        "",
        "Training-set benchmark: fsql's `Project.training_set()` against the faster of two hand-written",
        "DuckDB ASOF queries that compute the same rows (checked equal in every run). Goal: fsql /",
        "hand-written <= 1.1. CPU s is user + system time of the process, all threads.",
        "Written by `benchmarks/run.py`; see README.md for what is measured.",
        "",
        f"Machine: {box['nproc']} cores ({box['cpu']}), {box['memory_gib']} GiB RAM; shared with other work,",
        "so single timings are noisy: each side runs several times, interleaved, and the median is reported.",
    ]
    for record in records.values():
        lines += ["", *_section(record)]
    return "\n".join(lines) + "\n"


def _section(r: dict[str, Any]) -> list[str]:
    s = r["sizes"]
    used = ", ".join(f"{name} {value}" for name, value in r["versions"].items())
    lines = [
        f"## {r['scale']}: {s['spine_rows']:,} spine rows, 2 views x {s['view_rows']:,} rows",
        "",
        f"Run {r['date']}: `{r['command']}`, {r['reps']} runs per side; load average at the end "
        f"{' / '.join(map(str, r['load_avg']))} (1 / 5 / 15 min) on {r['machine']['nproc']} cores.",
        f"Versions: {used}.",
        "",
        "| side | median s | min-max s | spine rows/s | CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side, m in r["sides"].items():
        lines.append(
            f"| {SIDE_LABELS[side]} | {m['median_s']:.3f} | {m['min_s']:.3f}-{m['max_s']:.3f} "
            f"| {m['rows_per_s']:,.0f} | {m['cpu_s']:.3f} | {m['peak_rss_mib']:,.0f} |"
        )
    lines += [
        f"| **ratio fsql / faster hand-written** | **{r['ratio']:.2f}** | {r['ratio_min']:.2f} (fastest runs) | "
        f"| {r['ratio_cpu']:.2f} | |",
        f"| ratio fsql's SQL alone / faster hand-written | {r['ratio_sql']:.2f} | | | | |",
        "",
        _reading(r),
    ]
    return lines


def _reading(r: dict[str, Any]) -> str:
    fsql, sql, hand = (r["sides"][side] for side in ("fsql", "fsql_sql", r["hand"]))
    verdict = "meets" if r["ratio"] <= 1.1 else "misses"
    python_ms = (fsql["median_s"] - sql["median_s"]) * 1000
    return (
        f"fsql built the {r['sizes']['spine_rows']:,}-row training set in {fsql['median_s']:.2f} s (median) "
        f"against {hand['median_s']:.2f} s for the faster hand-written form ({HAND_SHORT[r['hand']]}): "
        f"a ratio of {r['ratio']:.2f}, which "
        f"{verdict} the 1.1 goal ({r['ratio_min']:.2f} between the fastest runs, {r['ratio_cpu']:.2f} in CPU "
        f"time). fsql's own SQL run alone took {sql['median_s']:.2f} s ({r['ratio_sql']:.2f} x hand-written); "
        f"fsql end to end took {python_ms:.0f} ms more: its Python side (reading the YAML, compiling, a "
        f"LIMIT 0 query for the spine's columns), plus noise. Peak RSS (VmHWM of each child, median): "
        f"{fsql['peak_rss_mib']:,.0f} MiB for fsql, {hand['peak_rss_mib']:,.0f} MiB hand-written, "
        f"{r['baseline_rss_mib']:,.0f} MiB of it the interpreter with duckdb, pyarrow and fsql imported. "
        f"Wall times spread {_spread(r):.0f} % between runs (max/min - 1, worst side) with a load average "
        f"of {r['load_avg'][0]} on {r['machine']['nproc']} cores"
        + ("; with such a spread, trust the CPU-time ratio more. " if _spread(r) > 20 else ". ")
        + f"In the data, {r['ties']:,} driver_stats rows share (driver_id, event_ts) with "
        f"another and are told apart by created_ts; generating it took {r['generate_s']:.1f} s."
    )


def _spread(r: dict[str, Any]) -> float:
    return max(m["max_s"] / m["min_s"] - 1 for m in r["sides"].values()) * 100
