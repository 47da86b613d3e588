"""One timed measurement in a process of its own, so that its peak RSS is its own.

    python benchmarks/child.py SIDE SCALE PROJECT_DIR

SIDE is `fsql` (load_project + training_set), `fsql_sql` (fsql's compiled SQL, read from
PROJECT_DIR/bench.sql, run like the hand-written one), `hand_struct` or `hand_dedup` (the
hand-written query in one of its two forms) or `baseline` (imports only). Prints one JSON
line: wall seconds, CPU seconds, rows, and the peak RSS of this process: VmHWM from
/proc/self/status, the high-water mark of its own address space. (ru_maxrss from wait4 is
not used: Linux carries the parent's RSS at fork time into the child's.)
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import datagen
import workloads

COMPILED_SQL = "bench.sql"


def measure(side: str, data: datagen.Dataset, project_dir: Path) -> dict[str, float]:
    if side == "baseline":
        return {"seconds": 0.0, "cpu_s": 0.0, "rows": 0, "peak_rss_mib": peak_rss_mib()}
    cpu_before = cpu_seconds()
    if side == "fsql":
        table, seconds = workloads.run_fsql(project_dir, data)
    elif side in workloads.HAND_FORMS:
        table, seconds = workloads.run_sql(workloads.hand_sql(data, side))
    elif side == "fsql_sql":
        table, seconds = workloads.run_sql((project_dir / COMPILED_SQL).read_text())
    else:
        raise SystemExit(f"unknown side {side!r}")
    cpu_s = cpu_seconds() - cpu_before
    return {"seconds": seconds, "cpu_s": cpu_s, "rows": table.num_rows, "peak_rss_mib": peak_rss_mib()}


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: less sensitive to other load than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kib) / 1024


def main(argv: list[str]) -> None:
    side, scale, project_dir = argv
    data = datagen.dataset(datagen.SCALES[scale])
    print(json.dumps(measure(side, data, Path(project_dir))))


if __name__ == "__main__":
    main(sys.argv[1:])
