"""Materialization at scale: one online view of N entities, a first load and a full update.

    python benchmarks/materialize_scale.py [--entities 1000000 10000000] [--reps 3]
        [--url URL] [--dir SCRATCH] [--batches 10000 100000 1000000] [--before DIR] [--write]

For each N (default 1M and 10M), the script writes a parquet source under a scratch dir
(one row per entity per period; every entity has a newer row in period 1), then, in
interleaved repetitions, times in child processes of their own (so each peak RSS is its own):
a. fsql: `fsql.load_project(dir).build(BuildOptions(end=...))`, as a user builds, DuckDB
   offline into Postgres online: a first load (end = the end of period 0, empty schema),
   then a full update (end = the end of period 1: every entity newer, rebuilt and swapped);
b. the limit, after each: the same rows read by DuckDB from the same parquet (streamed,
   batches of the same size), CSV-encoded and COPYed by psycopg into a new table, then its
   primary key (the online table has one; the time without it is shown too), one commit.
c. after each full update, the limit with the never-back-in-time check a hand-written update
   needs: the stored (key, feature_ts, created_ts) COPYed out of the online table into arrow,
   the rows read that no stored row beats (an anti-join in DuckDB) COPYed in, then the key;
   what the check costs is this side against b;
d. with --before DIR (a checkout holding another `fsql` package, e.g. /work/main, read only),
   that code's first load and full update in the same repetitions, on a schema reset for it.
Peak RSS is VmHWM of the child (DuckDB's own memory included). With --batches, first loads
at 1M entities are timed for each batch size, and once with the whole result in one batch
(what fsql did before it streamed). The figures go to stdout, and with --write to
benchmarks/RESULTS.md, section "Materialization at scale". The schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
SECTION = "## Materialization at scale"
DEFAULT_URL = os.environ.get("FSQL_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "fsql_matscale"
VIEW = "driver_stats"
T0, T1, T2 = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
HALF_S = 181 * 86_400

# Each driver has one row in each period: period 0 in [T0, T0 + 181 d), period 1 in (T1, T1 + 181 d].
_ROWS = """
SELECT e AS driver_id, ts AS event_ts, ts + to_seconds(rnd(r, 3, 600)) AS created_ts,
       rnd(r, 4, 1000000)::DOUBLE / 1e6 AS conv_rate, rnd(r, 5, 1000000)::DOUBLE / 1e6 AS acc_rate,
       rnd(r, 6, 50) AS avg_daily_trips, 'z' || lpad(rnd(r, 7, 100)::VARCHAR, 2, '0') AS home_zone
FROM (SELECT e, e * 2 + p AS r,
             CASE p WHEN 0 THEN {t0} ELSE {t1} + INTERVAL 1 SECOND END + to_seconds(rnd(e * 2 + p, 2, {half})) AS ts
      FROM range({n}) t(e), (VALUES (0), (1)) v(p))
"""
_MACRO = "CREATE OR REPLACE TEMP MACRO rnd(i, salt, m) AS (hash(i + salt * 1099511627776) % m)::BIGINT"
COLUMNS = ("driver_id", "event_ts", "created_ts", "conv_rate", "acc_rate", "avg_daily_trips", "home_zone")
TYPES = {
    "driver_id": "BIGINT",
    "feature_ts": "TIMESTAMPTZ",
    "created_ts": "TIMESTAMPTZ",
    "conv_rate": "DOUBLE PRECISION",
    "acc_rate": "DOUBLE PRECISION",
    "avg_daily_trips": "BIGINT",
    "home_zone": "TEXT",
}

_DEFINITIONS = """\
entities:
  - {{name: driver, join_keys: [{{name: driver_id, type: bigint}}]}}
sources:
  - name: drivers
    path: {path}
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {{driver_id: bigint, event_ts: timestamptz, created_ts: timestamptz, conv_rate: double,
              acc_rate: double, avg_daily_trips: bigint, home_zone: string}}
feature_views:
  - name: {view}
    entities: [driver]
    source: drivers
    ttl: 365d
    online: true
    features:
      - {{name: conv_rate, type: double}}
      - {{name: acc_rate, type: double}}
      - {{name: avg_daily_trips, type: bigint}}
      - {{name: home_zone, type: string}}
"""


# --- data and project --------------------------------------------------------------------


def generate(folder: Path, entities: int) -> Path:
    import duckdb

    path = folder / f"drivers_{entities}.parquet"
    if path.exists():
        return path
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(_MACRO)
        sql = _ROWS.format(
            n=entities, half=HALF_S, t0=f"TIMESTAMPTZ '{T0.isoformat()}'", t1=f"TIMESTAMPTZ '{T1.isoformat()}'"
        )
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


def write_project(folder: Path, parquet: Path, url: str) -> Path:
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "fsql_project.yml").write_text("name: bench_scale\n")
    (folder / "profiles.yml").write_text(
        f'bench_scale:\n  target: online\n  outputs:\n    online:\n      offline: "duckdb:///:memory:"\n'
        f'      online: "{url}"\n      online_schema: {SCHEMA}\n'
    )
    (folder / "definitions" / "bench.yml").write_text(_DEFINITIONS.format(path=parquet, view=VIEW))
    return folder


def pg(url: str) -> Any:
    import psycopg

    from fsql.engines.postgres import conninfo

    connection = psycopg.connect(conninfo(url), autocommit=True)
    connection.execute("SET TIME ZONE 'UTC'")
    return connection


def reset_schema(url: str, *, create: bool = True) -> None:
    with pg(url) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        if create:
            con.execute(f'CREATE SCHEMA "{SCHEMA}"')


# --- the child: one measured side ---------------------------------------------------------


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kib) / 1024


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fsql_side(project: Path, end: datetime, rows_per_batch: int) -> dict[str, Any]:
    """One `build`, as a user runs it; the time of each materialization step alongside."""
    import duckdb  # noqa: F401  imported before the clock, as the limit side imports them
    import psycopg  # noqa: F401

    import fsql
    from fsql.build import BuildOptions
    from fsql.online import materialize, swap

    materialize.ROWS_PER_BATCH = rows_per_batch  # type: ignore[misc]
    steps: dict[str, float] = {}

    def timed(module: Any, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if original is None:  # another fsql (--before) may not have this step
            return

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                steps[label] = steps.get(label, 0.0) + time.perf_counter() - started

        setattr(module, name, wrapper)

    timed(materialize, "_stored_rows", "count stored rows")
    timed(materialize, "_load_latest_rows", "DuckDB read + CSV + COPY")
    timed(materialize, "_merge_beside", "merge beside (DELETE, INSERT, key)")
    try:
        from fsql.online import versions
    except ImportError:  # an fsql before fsql.online.versions
        versions = None
    if versions is not None:
        timed(versions, "_copy_out", "stored versions COPYed out (in a thread, beside the COPY)")
        timed(versions.StoredVersions, "result", "waiting for the stored versions after the COPY")
        timed(materialize, "kept_keys", "versions compared in DuckDB")
        timed(materialize, "complete_beside", "complete beside (kept rows, key)")
    timed(materialize, "upsert_staged", "upsert in place")
    timed(materialize, "swap_in", "swap")
    del swap
    started = time.perf_counter()
    result = fsql.load_project(project).build(BuildOptions(end=end))
    seconds = time.perf_counter() - started
    node = result.nodes[0]
    if node.status != "success":
        raise SystemExit(f"build failed: {node.message}")
    return {
        "seconds": seconds,
        "rows": node.rows_written,
        "rows_read": node.rows_read,
        "steps": steps,
        "fsql": str(Path(fsql.__file__).parent),
    }


def copy_into_new_table(con: Any, table: str, reader: Any) -> int:
    """A new table of the view's columns, filled by one COPY of `reader`'s batches as CSV (zoned times
    written naive, read back as UTC by the session), in the caller's open transaction; returns the rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = ", ".join(f'"{name}" {kind}' for name, kind in TYPES.items())
    options = pacsv.WriteOptions(include_header=False)
    rows = 0
    con.autocommit = False
    con.execute(f"CREATE TABLE {table} ({columns})")
    with con.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
        for batch in reader:
            data = pa.Table.from_batches([batch])
            for index, field in enumerate(data.schema):
                if pa.types.is_timestamp(field.type) and field.type.tz is not None:
                    data = data.set_column(index, field.name, data.column(index).cast(pa.timestamp(field.type.unit)))
            buffer = io.BytesIO()
            pacsv.write_csv(data, buffer, options)
            copy.write(buffer.getbuffer())
            rows += data.num_rows
    return rows


def limit_side(url: str, parquet: Path, start: datetime | None, end: datetime, rows_per_batch: int) -> dict[str, Any]:
    """The same rows, DuckDB -> arrow batches -> CSV -> COPY into a new table, then its key."""
    import duckdb

    table = f'"{SCHEMA}"."limit_copy"'
    select = ", ".join('event_ts AS "feature_ts"' if c == "event_ts" else f'"{c}"' for c in COLUMNS)
    where = "event_ts <= $end" + (" AND event_ts > $start" if start else "")
    params: dict[str, Any] = {"end": end, **({"start": start} if start else {})}
    with pg(url) as con:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    started = time.perf_counter()
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    reader = db.sql(f"SELECT {select} FROM read_parquet('{parquet}') WHERE {where}", params=params).to_arrow_reader(
        rows_per_batch
    )
    with pg(url) as con:
        rows = copy_into_new_table(con, table, reader)
        copied = time.perf_counter() - started
        con.execute(f'ALTER TABLE {table} ADD PRIMARY KEY ("driver_id")')
        con.commit()
    seconds = time.perf_counter() - started
    db.close()
    with pg(url) as con:
        con.execute(f"DROP TABLE {table}")
    return {"seconds": seconds, "rows": rows, "steps": {"COPY (DuckDB read included)": copied}}


def stored_versions(url: str) -> Any:
    """The online table's (driver_id, feature_ts, created_ts) by COPY ... TO STDOUT (CSV) into arrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("feature_ts", pa.timestamp("us", "UTC")),
            ("created_ts", pa.timestamp("us", "UTC")),
        ]
    )
    options = {
        "read_options": pacsv.ReadOptions(column_names=schema.names),
        "convert_options": pacsv.ConvertOptions(column_types=schema, null_values=[""], strings_can_be_null=True),
    }
    parts, block = [], bytearray()
    sql = f'COPY (SELECT driver_id, feature_ts, created_ts FROM "{SCHEMA}"."{VIEW}") TO STDOUT (FORMAT csv)'
    with pg(url) as con:
        # Rows straight from libpq, the fastest read known here (psycopg's Copy object: ~0.5 us more a row).
        pgconn = con.pgconn
        pgconn.send_query(sql.encode())
        pgconn.get_result()
        while True:
            size, row = pgconn.get_copy_data(0)
            if size <= 0:
                break
            block += row
            if len(block) >= 8 << 20:
                parts.append(pacsv.read_csv(pa.BufferReader(bytes(block)), **options))
                block.clear()
        while (result := pgconn.get_result()) is not None:
            if result.error_message:
                raise SystemExit(result.error_message.decode())
    if block:
        parts.append(pacsv.read_csv(pa.BufferReader(bytes(block)), **options))
    return pa.concat_tables(parts)


def limit_checked_side(url: str, parquet: Path, start: datetime | None, end: datetime, rows_per_batch: int) -> dict:
    """The limit with the never-back-in-time check: stored versions out, an anti-join in DuckDB, COPY in, key."""
    import duckdb

    table = f'"{SCHEMA}"."limit_checked"'
    select = ", ".join('event_ts::TIMESTAMPTZ AS "feature_ts"' if c == "event_ts" else f'"{c}"' for c in COLUMNS)
    where = "event_ts <= $end" + (" AND event_ts > $start" if start else "")
    params: dict[str, Any] = {"end": end, **({"start": start} if start else {})}
    with pg(url) as con:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    started = time.perf_counter()
    stored = stored_versions(url)
    copied_out = time.perf_counter() - started
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.register("stored", stored)
    beats = (
        "s.feature_ts > r.feature_ts OR (s.feature_ts = r.feature_ts AND "
        "coalesce(s.created_ts, '-infinity'::TIMESTAMPTZ) > coalesce(r.created_ts, '-infinity'::TIMESTAMPTZ))"
    )
    sql = (
        f"SELECT r.* FROM (SELECT {select} FROM read_parquet('{parquet}') WHERE {where}) r "
        f"ANTI JOIN stored s ON r.driver_id = s.driver_id AND ({beats})"
    )
    reader = db.sql(sql, params=params).to_arrow_reader(rows_per_batch)
    with pg(url) as con:
        rows = copy_into_new_table(con, table, reader)
        con.execute(f'ALTER TABLE {table} ADD PRIMARY KEY ("driver_id")')
        con.commit()
    seconds = time.perf_counter() - started
    db.close()
    with pg(url) as con:
        con.execute(f"DROP TABLE {table}")
    return {"seconds": seconds, "rows": rows, "steps": {"stored versions COPYed out": copied_out}}


def child(argv: list[str]) -> None:
    side, project, url, parquet, start, end, batch = argv
    cpu = cpu_seconds()
    moment = datetime.fromisoformat(end)
    since = datetime.fromisoformat(start) if start else None
    if side == "fsql":
        out = fsql_side(Path(project), moment, int(batch))
    elif side == "limit":
        out = limit_side(url, Path(parquet), since, moment, int(batch))
    else:
        out = limit_checked_side(url, Path(parquet), since, moment, int(batch))
    out.update(cpu_s=cpu_seconds() - cpu, peak_rss_mib=peak_rss_mib())
    print(json.dumps(out))


# --- the parent: interleaved runs ----------------------------------------------------------


def run_child(  # type: ignore[no-untyped-def]
    side: str,
    project: Path,
    url: str,
    parquet: Path,
    start: datetime | None,
    end: datetime,
    batch: int,
    before: Path | None = None,
):
    args = [sys.executable, __file__, "--child", side, str(project), url, str(parquet)]
    args += [start.isoformat() if start else "", end.isoformat(), str(batch)]
    env = dict(os.environ)
    if before is not None:  # its fsql package ahead of this checkout's
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(before), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load"] = os.getloadavg()[0]
    return out


def check_online(url: str, entities: int, *, period: int) -> None:
    """Every entity holds its row of the period (its event time falls in it)."""
    low, high = (T0, T1) if period == 0 else (T1, T2)
    with pg(url) as con:
        count, inside = con.execute(
            f'SELECT count(*), count(*) FILTER (WHERE feature_ts >= %s AND feature_ts <= %s) FROM "{SCHEMA}"."{VIEW}"',
            (low, high),
        ).fetchone()
    if count != entities or inside != entities:
        raise SystemExit(f"online table holds {count} rows, {inside} of period {period}; expected {entities}")


def bench_scale(
    folder: Path, url: str, entities: int, reps: int, batch: int, before: Path | None = None
) -> dict[str, Any]:
    parquet = generate(folder, entities)
    project = write_project(folder / f"project_{entities}", parquet, url)
    names = ["first_fsql", "first_limit", "update_fsql", "update_limit", "update_limit_checked"]
    names += ["first_before", "update_before"] if before is not None else []
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(reps):
        reset_schema(url)
        runs["first_fsql"].append(run_child("fsql", project, url, parquet, None, T1, batch))
        check_online(url, entities, period=0)
        runs["first_limit"].append(run_child("limit", project, url, parquet, None, T1, batch))
        runs["update_fsql"].append(run_child("fsql", project, url, parquet, None, T2, batch))
        check_online(url, entities, period=1)
        runs["update_limit"].append(run_child("limit", project, url, parquet, T1, T2, batch))
        runs["update_limit_checked"].append(run_child("checked", project, url, parquet, T1, T2, batch))
        if before is not None:
            reset_schema(url)
            runs["first_before"].append(run_child("fsql", project, url, parquet, None, T1, batch, before))
            check_online(url, entities, period=0)
            runs["update_before"].append(run_child("fsql", project, url, parquet, None, T2, batch, before))
            check_online(url, entities, period=1)
        print(f"  {entities:,}: " + ", ".join(f"{k} {v[-1]['seconds']:.2f}s" for k, v in runs.items()), flush=True)
    with pg(url) as con:
        size = con.execute(f'SELECT pg_total_relation_size(\'"{SCHEMA}"."{VIEW}"\')').fetchone()[0]
    return {"entities": entities, "batch": batch, "runs": runs, "table_bytes": size}


def bench_batches(folder: Path, url: str, entities: int, sizes: list[int], reps: int) -> dict[str, Any]:
    parquet = generate(folder, entities)
    project = write_project(folder / f"project_{entities}", parquet, url)
    runs: dict[str, list[dict[str, Any]]] = {str(size): [] for size in [*sizes, entities]}
    for _ in range(reps):
        for size in [*sizes, entities]:
            reset_schema(url)
            runs[str(size)].append(run_child("fsql", project, url, parquet, None, T1, size))
    return {"entities": entities, "runs": runs}


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def render(record: dict[str, Any]) -> str:
    lines = [
        f"### {record['date']}, fsql git {record['git']}",
        "",
        f"`{record['command']}`; load average {record['load_start']:.1f} at the start, "
        f"{record['load_end']:.1f} at the end (1 min; other sessions share the 2 cores); {record['machine']}",
        "",
        "One view (4 features: 2 double, bigint, text; keys bigint; event and created times), one row per entity "
        "per period. First load: empty schema, `build` up to the end of period 0. Full update: `build` up to the "
        "end of period 1, every entity newer (the run rebuilds beside the live table and swaps). The limit: "
        "the same rows read by DuckDB from the same parquet in batches, CSV, COPY into a new table, its primary "
        "key, one commit. Medians of interleaved runs; peak RSS is the child process's VmHWM (DuckDB included). "
        "Rows marked before: the --before checkout's fsql, in the same repetitions.",
        "",
        "| entities | run | fsql s | fsql rows/s | fsql peak RSS MiB | limit s | limit rows/s | limit peak RSS MiB "
        "| fsql / limit | limit without its key s | load (1 min) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in record["scales"]:
        n, runs = scale["entities"], scale["runs"]
        for run, label in (("first", "first load"), ("update", "full update")):
            limit = runs[f"{run}_limit"]
            ls = median(limit, "seconds")
            copy_only = statistics.median(r["steps"]["COPY (DuckDB read included)"] for r in limit)
            for side, suffix in (("fsql", ""), ("before", " (before)")):
                ours = runs.get(f"{run}_{side}")
                if not ours:
                    continue
                fs = median(ours, "seconds")
                load = statistics.median(r["load"] for r in ours + limit)
                lines.append(
                    f"| {n:,} | {label}{suffix} | {fs:.2f} | {n / fs:,.0f} | {median(ours, 'peak_rss_mib'):,.0f} | "
                    f"{ls:.2f} | {n / ls:,.0f} | {median(limit, 'peak_rss_mib'):,.0f} | {fs / ls:.2f} | "
                    f"{copy_only:.2f} | {load:.1f} |"
                )
    lines += [
        "",
        "What the never-back-in-time check costs a hand-written full update (the limit, then the limit with the "
        "stored versions COPYed out first and the rows read anti-joined against them in DuckDB; medians, s):",
        "",
        "| entities | limit | limit + check | check | of which COPY out | limit + check peak RSS MiB "
        "| fsql / (limit + check) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in record["scales"]:
        runs = scale["runs"]
        if not runs.get("update_limit_checked"):
            continue
        ls, cs = median(runs["update_limit"], "seconds"), median(runs["update_limit_checked"], "seconds")
        out = statistics.median(r["steps"]["stored versions COPYed out"] for r in runs["update_limit_checked"])
        rss = median(runs["update_limit_checked"], "peak_rss_mib")
        lines.append(
            f"| {scale['entities']:,} | {ls:.2f} | {cs:.2f} | {cs - ls:.2f} | {out:.2f} | {rss:,.0f} | "
            f"{median(runs['update_fsql'], 'seconds') / cs:.2f} |"
        )
    lines += ["", "Where fsql's time goes (medians, s):", "", "| entities | run | step | s |", "|---:|---|---|---:|"]
    for scale in record["scales"]:
        for run, label in (("first", "first load"), ("update", "full update")):
            for side, suffix in (("fsql", ""), ("before", " (before)")):
                ours = scale["runs"].get(f"{run}_{side}")
                if not ours:
                    continue
                names = sorted({name for r in ours for name in r["steps"]})
                for name in names:
                    value = statistics.median(r["steps"].get(name, 0.0) for r in ours)
                    lines.append(f"| {scale['entities']:,} | {label}{suffix} | {name} | {value:.2f} |")
                lines.append(
                    f"| {scale['entities']:,} | {label}{suffix} | whole build | {median(ours, 'seconds'):.2f} |"
                )
    if record.get("batches"):
        b = record["batches"]
        n = b["entities"]
        lines += [
            "",
            f"Batch size, first load of {n:,} entities (fsql `build`, medians; the last row is the whole "
            f"result in one batch, as before streaming):",
            "",
            "| rows per batch | s | rows/s | peak RSS MiB | load (1 min) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for size, runs in b["runs"].items():
            s = median(runs, "seconds")
            lines.append(
                f"| {int(size):,} | {s:.2f} | {n / s:,.0f} | {median(runs, 'peak_rss_mib'):,.0f} | "
                f"{median(runs, 'load'):.1f} |"
            )
    lines.append("")
    every = "; ".join(
        f"{s['entities']:,} {k}: " + "/".join(f"{r['seconds']:.2f}" for r in v)
        for s in record["scales"]
        for k, v in s["runs"].items()
    )
    lines += [f"Every run (s): {every}", ""]
    return "\n".join(lines)


def write_results(text: str) -> None:
    body = RESULTS_MD.read_text()
    intro = (
        f"{SECTION} (`benchmarks/materialize_scale.py`, issue 12 part 3)\n\n"
        "Rows stream from DuckDB into one COPY in batches of `fsql.engines.ROWS_PER_BATCH` rows; "
        "each record is one run of the script.\n\n"
    )
    if SECTION not in body:
        body = body.rstrip("\n") + "\n\n" + intro
    RESULTS_MD.write_text(body.rstrip("\n") + "\n\n" + text)


def machine() -> str:
    cpuinfo, meminfo = Path("/proc/cpuinfo").read_text(), Path("/proc/meminfo").read_text()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal"))) / 2**20
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.1f} GiB; python {platform.python_version()}, "
        f"duckdb {version('duckdb')}, pyarrow {version('pyarrow')}, psycopg {version('psycopg')}"
    )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    from fsql.engines import ROWS_PER_BATCH

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--dir", type=Path, default=None, help="scratch dir for the parquet (default: a temp dir)")
    parser.add_argument("--batches", type=int, nargs="*", default=[], help="batch sizes to time at 1M entities")
    parser.add_argument("--batch-reps", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout holding another fsql package, measured beside")
    parser.add_argument("--write", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    record: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git.strip(),
        "command": "python benchmarks/materialize_scale.py " + " ".join(sys.argv[1:]),
        "load_start": os.getloadavg()[0],
        "machine": machine(),
        "scales": [],
    }
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        folder = Path(scratch)
        try:
            if args.batches:
                record["batches"] = bench_batches(folder, args.url, 1_000_000, args.batches, args.batch_reps)
            for n in args.entities:
                record["scales"].append(bench_scale(folder, args.url, n, args.reps, ROWS_PER_BATCH, args.before))
        finally:
            reset_schema(args.url, create=False)
    record["load_end"] = os.getloadavg()[0]
    text = render(record)
    print(text)
    (HERE / "materialize_scale.json").write_text(json.dumps(record, indent=1, default=str))
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
