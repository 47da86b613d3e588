"""The fixed cost of a small `fsql build`: 2 views x N entities (default 20,000), against its limits.

    python benchmarks/small_build.py [--entities N] [--rounds R] [--runs K] [--url URL]
        [--before DIR] [--schema-prefix P] [--write]

The data and project are benchmarks/online.py's (two views, `driver_stats` with a created
time and a correction for every tenth driver, `rider_stats` without). Each side runs in a
child process of its own, which does one untimed round first (imports, first calls), then R
timed rounds of (first load into an empty schema, full update: every entity newer); the
parent runs the sides in turn K times (interleaved) and reports medians of every timed run:

- fsql, cold project: `fsql.load_project(dir, target="online").build(...)`, as online.py
  times it (YAML, compile, artifacts and the build, in a warm process);
- fsql, warm project: one `Project` kept by the child, `.build(...)` per run;
- raw COPY (online.py's limit): the rows fsql reads, already in memory as arrow, CSV-encoded
  and COPYed into a new UNLOGGED table without a key, one commit per view;
- raw COPY, logged, keyed: the same into a logged table, then its primary key (what an
  online table has: a crash or a replica keeps it, lookups use the key);
- hand-written build: what a script would do: connect DuckDB and Postgres, read the latest
  row per entity from the parquet files (`QUALIFY row_number() ...`), stream it as CSV into a
  new logged table, add its key, and for the full update swap it for the live table (drop,
  rename), one commit per view. It keeps no state, checks nothing against stored rows (a
  late run could move values back in time) and counts no late rows;
- hand-written build + never-back-in-time check: the same, whose full update also keeps the
  guarantee fsql keeps, the cheapest way found by hand (one statement in Postgres, before the
  key): a row read that a stored row beats (feature_ts, then created_ts with NULL lowest) is
  deleted, and the stored rows that beat their row read or whose key was not read are added.
  Like the hand-written build it counts no late rows and keeps no state.

With --before DIR (a directory holding another `fsql` package, e.g. `git archive main fsql`)
both fsql sides also run on that code, interleaved with the rest. Every child uses a schema
of its own (`small_build_<side>`, or --schema-prefix's), dropped at the end. The rows each side
leaves are checked equal to fsql's. --write puts the report into benchmarks/RESULTS.md between
the buildcost markers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_MD = HERE / "RESULTS.md"
BEGIN, END = "<!-- buildcost: begin -->", "<!-- buildcost: end -->"
DEFAULT_URL = os.environ.get("FSQL_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PHASES = ("first load", "full update")

# The online tables' columns, in fsql's order, and the hand-written latest-row query of each view.
VIEWS: dict[str, dict[str, Any]] = {
    "driver_stats": {
        "key": "driver_id",
        "columns": {
            "driver_id": "BIGINT NOT NULL",
            "conv_rate": "DOUBLE PRECISION",
            "acc_rate": "DOUBLE PRECISION",
            "avg_daily_trips": "BIGINT",
            "feature_ts": "TIMESTAMPTZ NOT NULL",
            "created_ts": "TIMESTAMPTZ",
            "materialized_at": "TIMESTAMPTZ NOT NULL DEFAULT now()",
        },
        "select": "driver_id, conv_rate, acc_rate, avg_daily_trips, event_ts AS feature_ts, created_ts",
        "order": "event_ts DESC, created_ts DESC",
    },
    "rider_stats": {
        "key": "rider_id",
        "columns": {
            "rider_id": "BIGINT NOT NULL",
            "spend_30d": "DOUBLE PRECISION",
            "avg_rating": "DOUBLE PRECISION",
            "trips_30d": "BIGINT",
            "home_zone": "TEXT",
            "feature_ts": "TIMESTAMPTZ NOT NULL",
            "created_ts": "TIMESTAMPTZ",
            "materialized_at": "TIMESTAMPTZ NOT NULL DEFAULT now()",
        },
        "select": "rider_id, spend_30d, avg_rating, trips_30d, home_zone, event_ts AS feature_ts, "
        "NULL::TIMESTAMPTZ AS created_ts",
        "order": "event_ts DESC",
    },
}
SOURCE = {"driver_stats": "drivers", "rider_stats": "riders"}


# --- the child: one side, R rounds --------------------------------------------------------------


def child(side: str, folder: Path, url: str, rounds: int, prefix: str) -> dict[str, Any]:
    import online

    schema = f"{prefix}{side.replace('-', '_')}"
    paths = {name: folder / f"{name}.parquet" for name in ("drivers", "riders")}
    runner = _runner(side, folder, url, schema, paths)
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for round_ in range(rounds + 1):  # round 0 is untimed
        online.reset_schema(url, schema)
        for phase, (start, end) in zip(PHASES, ((None, online.T1), (online.T1, online.T2)), strict=True):
            online.checkpoint(url)
            seconds = runner(start, end)
            if round_:
                times[phase].append(seconds)
    fingerprint = _fingerprint(url, schema)
    online.reset_schema(url, schema, create=False)
    return {"times": times, "fingerprint": fingerprint, "fsql": _fsql_location()}


def _fsql_location() -> str:
    import fsql

    return str(Path(fsql.__file__).parent)


def _runner(side: str, folder: Path, url: str, schema: str, paths: dict[str, Path]) -> Any:
    if side.endswith(("-cold", "-warm")):  # fsql, this code or --before's
        return _fsql_runner(side, folder, url, schema, paths)
    if side.startswith("raw"):
        return _raw_runner(side, url, schema, paths)
    check = side == "hand-checked"
    return lambda start, end: _hand_written(url, schema, paths, start, end, check=check)


def _fsql_runner(side: str, folder: Path, url: str, schema: str, paths: dict[str, Path]) -> Any:
    import online

    import fsql
    from fsql.build import BuildOptions

    project_dir = folder / f"project_{side}"
    if not project_dir.exists():
        sources = {name: f"path: {path}" for name, path in paths.items()}
        online.write_project(project_dir, offline="duckdb:///:memory:", online=url, schema=schema, sources=sources)
    kept = fsql.load_project(project_dir, target="online") if side.endswith("warm") else None

    def run(start: datetime | None, end: datetime) -> float:
        started = time.perf_counter()
        project = kept or fsql.load_project(project_dir, target="online")
        result = project.build(BuildOptions(end=end))
        seconds = time.perf_counter() - started
        failed = [f"{n.view}: {n.message}" for n in result.nodes if n.status != "success"]
        if failed or len(result.nodes) != 2:
            raise SystemExit(f"fsql build failed: {failed}")
        return seconds

    return run


def _latest_sql(view: str, path: Path, start: datetime | None) -> str:
    spec = VIEWS[view]
    where = "event_ts <= $end" + (" AND event_ts > $start" if start else "")
    return (
        f"SELECT {spec['select']} FROM read_parquet('{path}') WHERE {where} "
        f"QUALIFY row_number() OVER (PARTITION BY {spec['key']} ORDER BY {spec['order']}) = 1"
    )


def _params(start: datetime | None, end: datetime) -> dict[str, Any]:
    return {"end": end, **({"start": start} if start else {})}


def _raw_runner(side: str, url: str, schema: str, paths: dict[str, Path]) -> Any:
    """online.py's limit (and the same with a logged table and its key): rows in memory first."""
    import duckdb
    import online

    def run(start: datetime | None, end: datetime) -> float:
        db = duckdb.connect()
        db.execute("SET TimeZone = 'UTC'")
        rows = {
            view: db.sql(_latest_sql(view, paths[SOURCE[view]], start), params=_params(start, end)).to_arrow_table()
            for view in VIEWS
        }
        db.close()
        online.checkpoint(url)
        with online.pg(url, autocommit=False) as con:
            if side == "raw":
                return sum(online.copy_csv(con, f'"{schema}"."raw_{view}"', data) for view, data in rows.items())
            seconds = 0.0
            for view, data in rows.items():
                table = f'"{schema}"."raw_{view}"'
                seconds += online.copy_csv(con, table, data, unlogged=False)
                started = time.perf_counter()
                con.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({VIEWS[view]['key']})")
                con.commit()
                seconds += time.perf_counter() - started
            return seconds

    return run


# A stored row beats a row read: a newer event time, or the same one and a newer created time (NULL lowest).
BEATS = (
    "({s}.feature_ts > {r}.feature_ts OR ({s}.feature_ts = {r}.feature_ts AND "
    "coalesce({s}.created_ts, '-infinity'::TIMESTAMPTZ) > coalesce({r}.created_ts, '-infinity'::TIMESTAMPTZ)))"
)


def _hand_written(
    url: str, schema: str, paths: dict[str, Path], start: datetime | None, end: datetime, *, check: bool = False
) -> float:
    """The hand-written build; with `check`, a full update keeps fsql's never-back-in-time guarantee."""
    import duckdb
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from fsql.engines.postgres import conninfo

    started = time.perf_counter()
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    with psycopg.connect(conninfo(url)) as con:
        con.execute("SET TIME ZONE 'UTC'")
        for view, spec in VIEWS.items():
            live, new = f'"{schema}"."{view}"', f'"{schema}"."{view}_new"'
            target = live if start is None else new
            columns = ", ".join(f"{name} {kind}" for name, kind in spec["columns"].items())
            con.execute(f"CREATE TABLE {target} ({columns})")
            sql = _latest_sql(view, paths[SOURCE[view]], start)
            reader = db.sql(sql, params=_params(start, end)).to_arrow_reader(100_000)
            names = ", ".join(name for name in spec["columns"] if name != "materialized_at")
            options = pacsv.WriteOptions(include_header=False)
            with con.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT csv)") as copy:
                for batch in reader:
                    data = pa.Table.from_batches([batch])
                    for index, field in enumerate(data.schema):
                        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
                            data = data.set_column(index, field.name, data.column(index).cast(pa.timestamp("us")))
                    buffer = io.BytesIO()
                    pacsv.write_csv(data, buffer, options)
                    copy.write(buffer.getbuffer())
            if check and start is not None:
                _keep_stored(con, view, live, new)
            con.execute(f"ALTER TABLE {target} ADD PRIMARY KEY ({spec['key']})")
            if start is not None:
                con.execute(f"DROP TABLE {live}")
                con.execute(f'ALTER TABLE {new} RENAME TO "{view}"')
            con.commit()
    db.close()
    return time.perf_counter() - started


def _keep_stored(con: Any, view: str, live: str, new: str) -> None:
    """Never back in time, in Postgres: of the rows read (in `new`, no key yet), delete those a stored
    row beats, and add every stored row that beats its row read or whose key was not read.

    One statement, one hash join of the stored rows with the rows read. Measured slower here: a
    DELETE ... USING then an anti-join INSERT (two joins, about twice the time), and the stored
    versions COPYed out into an anti-join in DuckDB (the INSERT of stored rows not read remains)."""
    key = VIEWS[view]["key"]
    columns = ", ".join(VIEWS[view]["columns"])
    con.execute(
        f"WITH kept AS (SELECT s.*, r.{key} IS NOT NULL AS beaten FROM {live} s LEFT JOIN {new} r ON r.{key} = s.{key} "
        f"WHERE r.{key} IS NULL OR {BEATS.format(s='s', r='r')}), "
        f"gone AS (DELETE FROM {new} r USING kept k WHERE k.beaten AND r.{key} = k.{key}) "
        f"INSERT INTO {new} SELECT {columns} FROM kept"
    )


def _fingerprint(url: str, schema: str) -> dict[str, Any]:
    """Rows and a checksum of each view's values as the side left them (the raw sides: none)."""
    import online

    found = {}
    with online.pg(url) as con:
        for view, spec in VIEWS.items():
            names = [n for n in spec["columns"] if n != "materialized_at"]
            exists = con.execute("SELECT to_regclass(%s)", (f'"{schema}"."{view}"',)).fetchone()[0]
            if exists is None:
                continue
            row = con.execute(
                f'SELECT count(*), sum(hashtext(({", ".join(names)})::text)::numeric) FROM "{schema}"."{view}"'
            ).fetchone()
            found[view] = [int(row[0]), str(row[1])]
    return found


# --- the parent: interleaved children -----------------------------------------------------------


def run_child(side: str, folder: Path, args: argparse.Namespace, fsql_path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{fsql_path}{os.pathsep}{HERE}"}
    command = [sys.executable, __file__, "--child", side, str(folder), args.url, str(args.rounds), args.schema_prefix]
    # cwd elsewhere: the script's folder and PYTHONPATH decide which fsql is imported.
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=tempfile.gettempdir())
    if done.returncode:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(out["fsql"]) != fsql_path / "fsql":
        raise SystemExit(f"{side} imported fsql from {out['fsql']}, not {fsql_path / 'fsql'}")
    out["load"] = os.getloadavg()[0]
    return out


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import online

    sides: dict[str, Path] = {"fsql-cold": ROOT, "fsql-warm": ROOT}
    if args.before:
        sides = {"before-cold": args.before, "before-warm": args.before, **sides}
    sides.update({"raw": ROOT, "raw-logged": ROOT, "hand-written": ROOT, "hand-checked": ROOT})
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="fsql-small-build-") as scratch:
        folder = Path(scratch)
        online.generate(folder, args.entities)
        for run in range(args.runs):
            for side, fsql_path in sides.items():
                runs[side].append(run_child(side, folder, args, fsql_path))
            for phase in PHASES:
                print(f"run {run + 1}, {phase}: " + ", ".join(f"{s} {_median(r, phase):.3f}" for s, r in runs.items()))
    loads.append(os.getloadavg()[0])
    prints = {side: r[-1]["fingerprint"] for side, r in runs.items() if r[-1]["fingerprint"]}
    if len({json.dumps(p, sort_keys=True) for p in prints.values()}) != 1:
        raise SystemExit(f"the sides left different rows: {prints}")
    summary = {
        side: {phase: _median(r, phase) for phase in PHASES} | {"loads": [x["load"] for x in r]}
        for side, r in runs.items()
    }
    return {"summary": summary, "loads": loads, "rows": next(iter(prints.values())), "args": vars(args)}


def _median(runs: list[dict[str, Any]], phase: str) -> float:
    return statistics.median(t for r in runs for t in r["times"][phase])


LABELS = {
    "before-cold": "fsql before, cold project",
    "before-warm": "fsql before, warm project",
    "fsql-cold": "fsql, cold project",
    "fsql-warm": "fsql, warm project",
    "raw": "raw COPY (online.py's limit: unlogged, no key)",
    "raw-logged": "raw COPY, logged table + primary key",
    "hand-written": "hand-written build (DuckDB read, COPY, key, swap)",
    "hand-checked": "hand-written build + never-back-in-time check (one statement in Postgres)",
}


def render(record: dict[str, Any], label: str) -> str:
    s, args = record["summary"], record["args"]
    rows = sum(count for count, _ in record["rows"].values())
    lines = [
        f"### {label}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, fsql git {_git_head()}",
        "",
        f"`python benchmarks/small_build.py --entities {args['entities']} --rounds {args['rounds']} "
        f"--runs {args['runs']}{' --before ...' if args['before'] else ''}`; {rows:,} rows written per build "
        f"(2 views); load average (1 min) {record['loads'][0]:.1f} at the start, {record['loads'][1]:.1f} at "
        "the end; medians of every timed run, ms.",
        "",
        "| side | first load ms | full update ms | first load / raw | full update / raw | "
        "first load / hand-written | full update / hand-written | first load / hand + check | "
        "full update / hand + check | loads (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for side, result in s.items():
        cells = [f"{1000 * result[p]:.1f}" for p in PHASES]
        for limit in ("raw", "hand-written", "hand-checked"):
            cells += [f"{result[p] / s[limit][p]:.2f}" for p in PHASES]
        loads = ", ".join(f"{x:.1f}" for x in result["loads"])
        lines.append(f"| {LABELS[side]} | " + " | ".join(cells) + f" | {loads} |")
    return "\n".join(lines) + "\n"


def _git_head() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "?"


def write_results(text: str) -> None:
    body = RESULTS_MD.read_text()
    if BEGIN not in body:
        body = body.rstrip("\n") + f"\n\n{BEGIN}\n## Small builds\n\n{END}\n"
    head, rest = body.split(BEGIN, 1)
    section, tail = rest.split(END, 1)
    RESULTS_MD.write_text(f"{head}{BEGIN}{section.rstrip()}\n\n{text}{END}{tail}")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        side, folder, url, rounds, prefix = sys.argv[2:7]
        print(json.dumps(child(side, Path(folder), url, int(rounds), prefix)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=20_000, help="entities per view (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per child (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="children per side, interleaved (default 3)")
    parser.add_argument("--url", default=DEFAULT_URL, help="Postgres URL (env FSQL_BENCH_URL)")
    parser.add_argument("--schema-prefix", default="small_build_", help="each side's schema: this + its name")
    parser.add_argument("--before", type=Path, help="a directory holding another fsql package, measured beside")
    parser.add_argument("--label", default="run", help="the record's heading in RESULTS.md")
    parser.add_argument("--write", action="store_true", help="add the record to benchmarks/RESULTS.md")
    args = parser.parse_args()
    record = bench(args)
    text = render(record, args.label)
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
