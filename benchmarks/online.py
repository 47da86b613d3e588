"""Postgres benchmarks of fsql: materialization, online lookups, and the PIT training query.

    python benchmarks/online.py [--entities N] [--reps R] [--calls C] [--url URL] [--schema S]

In one run, on data generated deterministically in DuckDB (parquet; two feature views over
N entities, default 1M):
a. materialization, timed through `fsql.load_project(dir, target="online").build(...)` from
   DuckDB into Postgres: a first load (empty tables), then a full update (every entity
   newer), each against a raw COPY of the same arrow rows into an UNLOGGED table;
b. lookups: `OnlineStore.get_online_features` for 1 and 100 entities of a 2-view service,
   against a raw prepared psycopg SELECT by primary key over both tables;
c. the Postgres PIT training query (lateral strategy, with the supporting indexes) against
   DuckDB's (ASOF strategy), both through `Project.training_set`; the results must be equal.
Everything lives in one Postgres schema (default fsql_bench), dropped at the end. The
figures go to benchmarks/ONLINE_RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import fsql
from fsql.build import BuildOptions
from fsql.compile.request import OutputFeature, ViewRequest, resolve_features
from fsql.compile.strategy import strategy_for
from fsql.engines.duckdb import DuckDBEngine
from fsql.engines.postgres import conninfo, postgres_type
from fsql.online import materialize
from fsql.online.binding import bind_keys
from fsql.online.lookup import lookup_sql, request_keys

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "ONLINE_RESULTS.md"
DEFAULT_URL = os.environ.get("FSQL_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVICE = "ride_features"
KEYS = ("driver_id", "rider_id")
T0, T1, T2 = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
HALF_S = 181 * 86_400  # events of period 0 fall in [T0, T1), of period 1 in (T1, T1 + 181 days]

# --- data -------------------------------------------------------------------------------

_MACRO = "CREATE OR REPLACE TEMP MACRO rnd(i, salt, m) AS (hash(i + salt * 1099511627776) % m)::BIGINT"

# Each driver has one row per period; every tenth also a correction of its period-1 row (same
# event time, later created time). Each rider has one row per period, microsecond event times.
_DRIVERS = """
SELECT e AS driver_id, ts AS event_ts, ts + to_seconds(rnd(r, 3, 600) + 3600 * c) AS created_ts,
       rnd(r, 4, 1000000)::DOUBLE / 1e6 AS conv_rate, rnd(r, 5, 1000000)::DOUBLE / 1e6 AS acc_rate,
       rnd(r, 6, 50) AS avg_daily_trips
FROM (SELECT e, c, e * 4 + p * 2 + c AS r,
             CASE p WHEN 0 THEN {t0} ELSE {t1} + INTERVAL 1 SECOND END + to_seconds(rnd(e * 2 + p, 2, {half})) AS ts
      FROM range({n}) t(e), (VALUES (0, 0), (1, 0), (1, 1)) v(p, c) WHERE c = 0 OR e % 10 = 0)
ORDER BY hash(r)
"""
_RIDERS = """
SELECT e AS rider_id, ts AS event_ts, rnd(r, 13, 100000)::DOUBLE / 100 AS spend_30d,
       1 + rnd(r, 14, 400)::DOUBLE / 100 AS avg_rating, rnd(r, 15, 200) AS trips_30d,
       'z' || lpad(rnd(r, 16, 100)::VARCHAR, 2, '0') AS home_zone
FROM (SELECT e, e * 2 + p AS r,
             CASE p WHEN 0 THEN {t0} ELSE {t1} + INTERVAL 1 SECOND END
               + to_microseconds(rnd(e * 2 + p, 12, {half}::BIGINT * 1000000)) AS ts
      FROM range({n}) t(e), (VALUES (0), (1)) v(p))
ORDER BY hash(r)
"""
_SPINE = """
SELECT i AS request_id, rnd(i, 21, {n}) AS driver_id, rnd(i, 22, {n}) AS rider_id,
       {t0} + to_microseconds(rnd(i, 23, 365 * 86400 * 1000000::BIGINT)) AS event_timestamp,
       rnd(i, 24, 2) = 1 AS accepted
FROM range({spine}) t(i)
"""


def generate(folder: Path, entities: int) -> dict[str, Path]:
    """Write drivers, riders and spine parquet files (spine: entities / 10 rows)."""
    paths = {name: folder / f"{name}.parquet" for name in ("drivers", "riders", "spine")}
    params = {
        "n": entities,
        "spine": max(entities // 10, 1),
        "half": HALF_S,
        "t0": f"TIMESTAMPTZ '{T0.isoformat()}'",
        "t1": f"TIMESTAMPTZ '{T1.isoformat()}'",
    }
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(_MACRO)
        for name, template in (("drivers", _DRIVERS), ("riders", _RIDERS), ("spine", _SPINE)):
            con.execute(f"COPY ({template.format(**params)}) TO '{paths[name]}' (FORMAT parquet)")
    finally:
        con.close()
    return paths


# --- projects ---------------------------------------------------------------------------

_DEFINITIONS = """\
entities:
  - {{name: driver, join_keys: [{{name: driver_id, type: bigint}}]}}
  - {{name: rider, join_keys: [{{name: rider_id, type: bigint}}]}}
sources:
  - name: drivers
    {drivers}
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {{driver_id: bigint, event_ts: timestamptz, created_ts: timestamptz,
              conv_rate: double, acc_rate: double, avg_daily_trips: bigint}}
  - name: riders
    {riders}
    timestamp: event_ts
    columns: {{rider_id: bigint, event_ts: timestamptz, spend_30d: double, avg_rating: double,
              trips_30d: bigint, home_zone: string}}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: drivers
    ttl: 90d
    online: true
    features:
      - {{name: conv_rate, type: double}}
      - {{name: acc_rate, type: double}}
      - {{name: avg_daily_trips, type: bigint}}
  - name: rider_stats
    entities: [rider]
    source: riders
    online: true
    features:
      - {{name: spend_30d, type: double}}
      - {{name: avg_rating, type: double}}
      - {{name: trips_30d, type: bigint}}
      - {{name: home_zone, type: string}}
feature_services:
  - name: {service}
    features: [driver_stats, rider_stats]
"""


def write_project(folder: Path, *, offline: str, online: str, schema: str, sources: dict[str, str]) -> Path:
    """A two-view project whose target `online` reads `offline` and fills `online`."""
    (folder / "definitions").mkdir(parents=True)
    (folder / "fsql_project.yml").write_text("name: bench_online\ndialect: duckdb\n")
    (folder / "profiles.yml").write_text(
        f'bench_online:\n  target: online\n  outputs:\n    online:\n      offline: "{offline}"\n'
        f'      online: "{online}"\n      online_schema: {schema}\n'
    )
    (folder / "definitions" / "bench.yml").write_text(_DEFINITIONS.format(service=SERVICE, **sources))
    return folder


# --- Postgres helpers -------------------------------------------------------------------


def pg(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    connection = psycopg.connect(conninfo(url), autocommit=autocommit)
    connection.execute("SET TIME ZONE 'UTC'")
    return connection


def reset_schema(url: str, schema: str, *, create: bool = True) -> None:
    with pg(url) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if create:
            con.execute(f'CREATE SCHEMA "{schema}"')


def copy_csv(con: psycopg.Connection[Any], table: str, data: pa.Table, *, unlogged: bool = True) -> float:
    """Create `table` for `data`'s columns, then time CSV encoding + COPY + commit of its rows.

    Zoned timestamps are cast to naive UTC first (the session runs in UTC, so Postgres
    reads them back as the same instants): pyarrow writes naive ones to CSV much faster.
    """
    columns = ", ".join(f'"{f.name}" {postgres_type(f.type).sql("postgres")}' for f in data.schema)
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {table} ({columns})")
    con.commit()
    started = time.perf_counter()
    for index, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            data = data.set_column(index, field.name, data.column(index).cast(pa.timestamp(field.type.unit)))
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer)
    with con.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy:
        copy.write(buffer.getbuffer())
    con.commit()
    return time.perf_counter() - started


# --- a. materialization -----------------------------------------------------------------

STEPS = (
    "offline read (DuckDB)",
    "CSV encode",
    "COPY",
    "upsert",
    "rebuild beside",
    "swap",
    "state row",
    "commit",
    "other",
)


@contextmanager
def timed_steps(seconds: dict[str, float], read: dict[str, pa.Table]) -> Iterator[None]:
    """Time fsql's materialization steps by wrapping them (fsql's code is not changed).

    `read` receives each view's arrow table of latest rows, the rows the raw COPY reloads (the
    offline read also counts the source-state query that decides the watermark).
    """
    wrapped = [
        (DuckDBEngine, "query_arrow", "offline read (DuckDB)"),  # the source-state query
        (DuckDBEngine, "query_batches", "offline read (DuckDB)"),  # the latest rows
        (pacsv, "write_csv", "CSV encode"),
        (materialize, "copy_arrow", "copy_arrow"),
        (materialize, "upsert_staged", "upsert"),
        (materialize, "_merge_beside", "rebuild beside"),
        (materialize, "swap_in", "swap"),
        (materialize, "write_state", "state row"),
        (psycopg.Connection, "commit", "commit"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in wrapped]

    def timer(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            if isinstance(result, pa.RecordBatchReader):
                # Kept whole for the raw COPY to reload (fsql streams them): the read counts its batches.
                table = result.read_all()
                read[kwargs["node"]] = table
                result = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started
            return result

        return run

    for (owner, name, label), (_, _, original) in zip(wrapped, originals, strict=True):
        setattr(owner, name, timer(original, label))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def checkpoint(url: str) -> None:
    """Flush dirty pages first, so that no side pays for writing back the other's."""
    with pg(url) as con:
        con.execute("CHECKPOINT")


def timed_build(project_dir: Path, url: str, end: datetime) -> dict[str, Any]:
    """One `build` of both views up to `end`: seconds, rows written, steps and the rows read."""
    checkpoint(url)
    steps: dict[str, float] = {}
    read: dict[str, pa.Table] = {}
    with timed_steps(steps, read):
        started = time.perf_counter()
        result = fsql.load_project(project_dir, target="online").build(BuildOptions(end=end))
        seconds = time.perf_counter() - started
    failed = [f"{n.view}: {n.message}" for n in result.nodes if n.status != "success"]
    if failed:
        raise SystemExit("fsql build failed: " + "; ".join(failed))
    steps["COPY"] = steps.pop("copy_arrow") - steps["CSV encode"]
    steps["other"] = seconds - sum(steps.values())
    rows = sum(n.rows_written for n in result.nodes)
    return {"seconds": seconds, "rows": rows, "steps": steps, "read": read}


def raw_limit(url: str, schema: str, read: dict[str, pa.Table]) -> float:
    """Seconds to COPY the same arrow rows into fresh UNLOGGED tables (CSV, one commit each)."""
    checkpoint(url)
    with pg(url, autocommit=False) as con:
        return sum(copy_csv(con, f'"{schema}"."raw_{view}"', rows) for view, rows in read.items())


def bench_materialize(project_dir: Path, url: str, schema: str, reps: int) -> dict[str, Any]:
    """`reps` rounds of (first load, limit, full update, limit), each on a fresh schema."""
    runs: dict[str, list[dict[str, Any]]] = {"first load": [], "full update": []}
    for rep in range(reps):
        reset_schema(url, schema)
        for phase, end in (("first load", T1), ("full update", T2)):
            run = timed_build(project_dir, url, end)
            run["raw"] = raw_limit(url, schema, run.pop("read"))
            runs[phase].append(run)
            print(
                f"  rep {rep + 1} {phase}: fsql {run['seconds']:.2f} s for {run['rows']:,} rows, "
                f"raw COPY {run['raw']:.2f} s"
            )
    return {phase: summarize_phase(phase_runs) for phase, phase_runs in runs.items()}


def summarize_phase(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = runs[0]["rows"]
    if any(run["rows"] != rows for run in runs):
        raise SystemExit(f"rows written differ between repetitions: {[run['rows'] for run in runs]}")
    fsql_s = statistics.median(run["seconds"] for run in runs)
    raw_s = statistics.median(run["raw"] for run in runs)
    return {
        "rows": rows,
        "fsql_s": fsql_s,
        "raw_s": raw_s,
        "ratio": statistics.median(run["raw"] / run["seconds"] for run in runs),
        "steps": {step: statistics.median(run["steps"].get(step, 0.0) for run in runs) for step in STEPS},
        "all_fsql_s": [run["seconds"] for run in runs],
        "all_raw_s": [run["raw"] for run in runs],
    }


# --- b. lookups -------------------------------------------------------------------------

# The raw side as one would write it by hand: both tables by primary key in one prepared
# statement, the keys bound as arrays, the same ttl rule (NULL when older than 90 days).
_RAW_LOOKUP = """
SELECT CASE WHEN d.feature_ts >= %(now)s::timestamptz - INTERVAL '90 days' THEN d.conv_rate END,
       CASE WHEN d.feature_ts >= %(now)s::timestamptz - INTERVAL '90 days' THEN d.acc_rate END,
       CASE WHEN d.feature_ts >= %(now)s::timestamptz - INTERVAL '90 days' THEN d.avg_daily_trips END,
       r.spend_30d, r.avg_rating, r.trips_30d, r.home_zone
FROM unnest(%(drivers)s::bigint[], %(riders)s::bigint[]) WITH ORDINALITY AS k(driver_id, rider_id, o)
LEFT JOIN "{schema}".driver_stats d ON d.driver_id = k.driver_id
LEFT JOIN "{schema}".rider_stats r ON r.rider_id = k.rider_id
ORDER BY k.o
"""
FEATURES = 7  # the values the raw SELECT returns, in fsql's order
SIDES = {
    "raw": "raw prepared SELECT, generic plan",
    "fsql_sql": "fsql's lookup SQL, generic plan",
    "pool": "fsql's lookup SQL, checked out of the store's pool, fsql's session settings",
    "fsql": "fsql `get_online_features`",
}
GENERIC = ("raw", "fsql_sql")  # the sides run with plan_cache_mode = force_generic_plan


Side = tuple[Callable[[list[dict[str, int]]], Any], Callable[[Any], Any]]  # (prepare input, call)


def lookup_sides(project: Any, store: Any, schema: str) -> tuple[dict[str, Side], Callable[[str], None]]:
    """The ways to look up a batch of entity rows (see SIDES), and a function to call before a
    side's turn (generic plans for the raw sides, fsql's own plan setting for the others).

    Each side is (prepare, call): `prepare` turns entity rows into the call's input outside the
    timing (query parameters; fsql's own binding for the pool side), `call` is what is timed.
    From one side to the next one thing changes: the SQL text (raw -> fsql's), the pool checkout
    with fsql's session settings and key types, and fsql's Python around the query. The first two
    use one of the store's pooled connections directly, so every side talks to the same backends.
    """
    with store.pool.connection() as connection:
        fsql_mode = connection.execute("SHOW plan_cache_mode").fetchone()[0]  # type: ignore[index]
    raw_sql = _RAW_LOOKUP.format(schema=schema)
    request = resolve_features(project.definitions, service=SERVICE)
    keys = request_keys(request)
    fsql_sql = lookup_sql(request, schema, keys)
    mode = [fsql_mode]

    def before_turn(name: str) -> None:
        wanted = "force_generic_plan" if name in GENERIC else fsql_mode
        if mode[0] != wanted:
            connection.execute(f"SET plan_cache_mode = {wanted}")
            mode[0] = wanted

    def pool_call(params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with store.pool.connection() as pooled, pooled.cursor() as cursor:
            cursor.execute(fsql_sql, params, prepare=True)
            return cursor.fetchall()

    def plain(rows: list[dict[str, int]]) -> dict[str, Any]:
        return {**{f"key_{i}": [r[k.name] for r in rows] for i, k in enumerate(keys)}, "now": T2}

    def raw_input(rows: list[dict[str, int]]) -> dict[str, Any]:
        return {"drivers": [r["driver_id"] for r in rows], "riders": [r["rider_id"] for r in rows], "now": T2}

    sides: dict[str, Side] = {
        "raw": (raw_input, lambda values: connection.execute(raw_sql, values, prepare=True).fetchall()),
        "fsql_sql": (plain, lambda params: connection.execute(fsql_sql, params, prepare=True).fetchall()),
        "pool": (lambda rows: {**bind_keys(keys, rows), "now": T2}, pool_call),
        "fsql": (lambda rows: rows, lambda rows: store.get_online_features(rows, service=SERVICE, now=T2)),
    }
    return sides, before_turn


def latencies(
    sides: dict[str, Side], batches: dict[str, list[Any]], before_turn: Callable[[str], None], block: int = 25
) -> dict[str, list[float]]:
    """Milliseconds per call of each side on its own batches (so no side reads pages another has
    just cached). The sides take turns in blocks of `block` calls, rotating which goes first."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for turn, start in enumerate(range(0, len(batches[names[0]]), block)):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            before_turn(name)
            prepare, call = sides[name]
            for value in [prepare(rows) for rows in batches[name][start : start + block]]:
                started = time.perf_counter_ns()
                call(value)
                times[name].append((time.perf_counter_ns() - started) / 1e6)
    return times


def check_answers(sides: dict[str, Side], batches: list[Any]) -> None:
    """Every side must give the same answer for the same entity rows."""

    def values(row: Any) -> tuple[Any, ...]:
        # fsql's rows are dicts that also hold the keys; its SQL's rows hold each view's event time and
        # freshness after the values (what statuses are made from), which the raw SELECT does not return.
        return tuple(v for k, v in row.items() if k not in KEYS) if isinstance(row, dict) else tuple(row)[:FEATURES]

    for rows in batches:
        answers = [[values(row) for row in call(prepare(rows))] for prepare, call in sides.values()]
        if any(answer != answers[0] for answer in answers):
            raise SystemExit(f"lookup answers differ for {rows[:3]}...: {[a[:1] for a in answers]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def entity_batches(rng: random.Random, entities: int, size: int, count: int) -> list[list[dict[str, int]]]:
    """`count` batches of `size` random existing (driver_id, rider_id) entity rows."""
    return [
        [{"driver_id": rng.randrange(entities), "rider_id": rng.randrange(entities)} for _ in range(size)]
        for _ in range(count)
    ]


def bench_lookups(project_dir: Path, schema: str, entities: int, calls: int) -> tuple[dict[str, Any], ...]:
    """p50/p99 of each side for 1 and 100 entities, and fsql's Python steps, measured on vacuumed
    tables; before that, the raw side alone right after the full update (before VACUUM)."""
    project = fsql.load_project(project_dir, target="online")
    rng = random.Random(7)
    results: dict[str, Any] = {}
    before_vacuum: dict[str, Any] = {}
    with project.online_store() as store:
        with store.pool.connection() as connection:
            mode = connection.execute("SHOW plan_cache_mode").fetchone()[0]  # type: ignore[index]
        sides, before_turn = lookup_sides(project, store, schema)
        raw = {"raw": sides["raw"]}
        for size in (1, 100):
            times = latencies(raw, {"raw": entity_batches(rng, entities, size, calls // 3)}, before_turn)
            before_vacuum[str(size)] = {"p50": percentile(times["raw"], 0.5), "p99": percentile(times["raw"], 0.99)}
        with store.pool.connection() as connection:
            for view in ("driver_stats", "rider_stats"):
                connection.execute(f'VACUUM ANALYZE "{schema}"."{view}"')
        for size in (1, 100):
            check_answers(sides, entity_batches(rng, entities, size, 50))
            warm_up = {name: entity_batches(rng, entities, size, max(calls // 10, 50)) for name in sides}
            latencies(sides, warm_up, before_turn)
            times = latencies(sides, {name: entity_batches(rng, entities, size, calls) for name in sides}, before_turn)
            results[str(size)] = {
                name: {"p50": percentile(t, 0.5), "p99": percentile(t, 0.99)} for name, t in times.items()
            }
            one_batch = entity_batches(rng, entities, size, 1)[0]
            results[str(size)]["python_us"] = python_costs(project, store, one_batch)
        pool = store.pool.get_stats()
    facts = {"plan_cache_mode": mode, "pool_size": pool["pool_size"], "queued": pool.get("requests_queued", 0)}
    return results, before_vacuum, facts


def python_costs(project: Any, store: Any, rows: list[dict[str, int]], loops: int = 2000) -> dict[str, float]:
    """Microseconds per call of the functions `get_online_features` calls, each alone in a loop."""
    request = resolve_features(project.definitions, service=SERVICE)
    keys = request_keys(request)

    def checkout() -> None:
        with store.pool.connection():
            pass

    steps: dict[str, Callable[[], Any]] = {
        "resolve_features": lambda: resolve_features(project.definitions, service=SERVICE),
        "request_keys + bind_keys": lambda: bind_keys(request_keys(request), rows),
        "lookup_sql (cached)": lambda: lookup_sql(request, store.schema, keys),
        "pool checkout + return": checkout,
    }
    costs = {}
    for name, step in steps.items():
        started = time.perf_counter_ns()
        for _ in range(loops):
            step()
        costs[name] = (time.perf_counter_ns() - started) / loops / 1000
    return costs


# --- c. the PIT training query ----------------------------------------------------------


def load_offline_tables(url: str, schema: str, paths: dict[str, Path], project_dir: Path) -> dict[str, int]:
    """Load sources and spine into Postgres tables, with the lateral strategy's supporting indexes."""
    rows = {}
    with pg(url, autocommit=False) as con:
        for name, path in paths.items():
            data = pq.read_table(path)
            copy_csv(con, f'"{schema}"."{name}"', data)
            rows[name] = data.num_rows
        definitions = fsql.load_project(project_dir).definitions
        strategy = strategy_for("postgres")
        for view in definitions.feature_views.values():
            request = ViewRequest(
                view, definitions.sources[view.source], tuple(OutputFeature(f, f.name) for f in view.features)
            )
            statement = strategy.supporting_index(request, "postgres")
            if statement is None:
                raise SystemExit(f"no supporting index for {view.name}: its source is not a table")
            con.execute(statement)
        con.commit()
        con.autocommit = True
        for name in paths:
            con.execute(f'VACUUM ANALYZE "{schema}"."{name}"')
    return rows


def bench_pit(pg_dir: Path, duck_dir: Path, spine: Path, url: str, schema: str, reps: int) -> dict[str, Any]:
    """Median seconds of `training_set` on Postgres (lateral) and on DuckDB (ASOF); equal results."""
    runs: dict[str, Callable[[], pa.Table]] = {
        "postgres": lambda: fsql.load_project(pg_dir).training_set(service=SERVICE, spine=f"{schema}.spine"),
        "duckdb": lambda: fsql.load_project(duck_dir).training_set(service=SERVICE, spine=str(spine)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    tables: dict[str, pa.Table] = {}
    for rep in range(reps):
        for name in list(runs) if rep % 2 == 0 else list(runs)[::-1]:
            started = time.perf_counter()
            tables[name] = runs[name]()
            seconds[name].append(time.perf_counter() - started)
    result = {name: statistics.median(values) for name, values in seconds.items()}
    result["all"] = seconds
    result["rows"] = tables["duckdb"].num_rows
    result["non_null"] = non_null_share(tables["duckdb"])
    result["differences"] = differences(tables["postgres"], tables["duckdb"])
    result["plan"] = plan_summary(url, pg_dir)
    return result


def differences(ours: pa.Table, theirs: pa.Table) -> str:
    """'' when both tables hold the same rows (as multisets), else what differs."""
    if ours.column_names != theirs.column_names:
        return f"columns differ: {ours.column_names} vs {theirs.column_names}"
    con = duckdb.connect()
    try:
        con.register("ours", ours.cast(theirs.schema))
        con.register("theirs", theirs)
        [(only_ours,)] = con.execute("SELECT count(*) FROM (FROM ours EXCEPT ALL FROM theirs)").fetchall()
        [(only_theirs,)] = con.execute("SELECT count(*) FROM (FROM theirs EXCEPT ALL FROM ours)").fetchall()
    finally:
        con.close()
    return f"{only_ours} rows only in Postgres's, {only_theirs} only in DuckDB's" if only_ours or only_theirs else ""


def non_null_share(table: pa.Table) -> float:
    """The share of spine rows with a driver feature (the 90-day ttl leaves the rest NULL)."""
    return 1 - table.column("conv_rate").null_count / max(table.num_rows, 1)


def plan_summary(url: str, pg_dir: Path) -> str:
    """What EXPLAIN shows for the SQL fsql ran on Postgres: its scans, and whether it sorts."""
    sql = next((pg_dir / "target" / "run" / "postgres").glob("*.sql")).read_text()
    with pg(url) as con:
        plan = [row[0] for row in con.execute(f"EXPLAIN {sql}").fetchall()]
    backward = sum("Index Scan Backward" in line or "Index Only Scan Backward" in line for line in plan)
    sorts = sum(line.strip().lstrip("-> ").startswith(("Sort", "Incremental Sort")) for line in plan)
    return f"{backward} backward index scans, {sorts} sort nodes"


# --- the run ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000, help="entities per view (default 1M)")
    parser.add_argument("--reps", type=int, default=3, help="rounds of materialization and PIT runs (default 3)")
    parser.add_argument("--calls", type=int, default=3000, help="timed lookups per batch size and side")
    parser.add_argument("--url", default=DEFAULT_URL, help="Postgres URL (env FSQL_BENCH_URL)")
    parser.add_argument("--schema", default="fsql_bench", help="a schema of the benchmark's own, dropped at the end")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {"args": vars(args), "command": " ".join(["python benchmarks/online.py", *sys.argv[1:]])}
    results["load"] = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="fsql-online-bench-") as folder:
        root = Path(folder)
        paths = generate(root, args.entities)
        print(f"generated {', '.join(f'{p.name} ({pq.read_metadata(p).num_rows:,} rows)' for p in paths.values())}")
        duck_dir = write_project(
            root / "duck",
            offline="duckdb:///:memory:",
            online=args.url,
            schema=args.schema,
            sources={"drivers": f"path: {paths['drivers']}", "riders": f"path: {paths['riders']}"},
        )
        pg_dir = write_project(
            root / "pg",
            offline=args.url,
            online=args.url,
            schema=args.schema,
            sources={"drivers": f"table: {args.schema}.drivers", "riders": f"table: {args.schema}.riders"},
        )
        try:
            results["postgres"] = server_facts(args.url)
            print("a. materialization")
            results["materialize"] = bench_materialize(duck_dir, args.url, args.schema, args.reps)
            print("b. lookups")
            lookups = bench_lookups(duck_dir, args.schema, args.entities, args.calls)
            results["lookups"], results["lookups_before_vacuum"], results["lookup_plans"] = lookups
            print("c. PIT training query")
            results["tables"] = load_offline_tables(args.url, args.schema, paths, pg_dir)
            results["pit"] = bench_pit(pg_dir, duck_dir, paths["spine"], args.url, args.schema, args.reps)
        finally:
            reset_schema(args.url, args.schema, create=False)
    results["seconds"] = time.perf_counter() - started
    results["load"].append(os.getloadavg()[0])
    RESULTS_MD.write_text(render(results))
    print(summary(results))
    print(f"wrote {RESULTS_MD.relative_to(HERE.parent)} ({results['seconds']:.0f} s)")


def server_facts(url: str) -> dict[str, str]:
    with pg(url) as con:
        names = ("server_version", "shared_buffers", "temp_buffers", "synchronous_commit", "wal_level", "autovacuum")
        return {name: str(con.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]


# --- the report -------------------------------------------------------------------------

GOALS = {"first load": 0.5, "full update": 0.3}
LOOKUP_GOAL = 1.5


def machine() -> str:
    with open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown")
    with open("/proc/meminfo") as info:
        kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    return f"{os.cpu_count()} cores (nproc), {kib / 2**20:.1f} GiB memory, {cpu}"


def versions(results: dict[str, Any]) -> str:
    found = {name: version(name) for name in ("fsql", "duckdb", "psycopg", "psycopg-pool", "pyarrow", "sqlglot")}
    found = {"Python": platform.python_version(), **found, "PostgreSQL": results["postgres"]["server_version"]}
    return ", ".join(f"{name} {value}" for name, value in found.items())


def verdict(ratio: float, goal: float, *, at_most: bool = False) -> str:
    met = ratio <= goal if at_most else ratio >= goal
    return f"goal {'<=' if at_most else '>='} {goal}: {'met' if met else 'missed'}"


def render_materialize(results: dict[str, Any]) -> list[str]:
    lines = [
        "## a. Materialization (DuckDB parquet -> Postgres online tables)",
        "",
        "fsql is timed through `fsql.load_project(dir, target='online').build(BuildOptions(end=...))`, both views, "
        "end to end: YAML, compile, the DuckDB read of the latest row per entity, CSV encode, COPY (into a "
        "table created in the same transaction, or into a temporary stage that the `INSERT ... ON CONFLICT DO "
        "UPDATE` upsert then merges), the state row and the commit. "
        "A first load fills empty tables up to 2025-07-01; the full update that follows reads (2025-07-01, "
        "2026-01-01], where every entity has a newer row. The limit is a raw COPY of the same arrow rows, same "
        "columns, into a new UNLOGGED table without indexes, one commit per view: pyarrow CSV (zoned "
        "timestamps cast to naive UTC first, on a UTC session) -> `COPY FROM STDIN`, the encoding included. "
        "Steps are timed by wrapping fsql's functions at run time; 'other' is the rest (YAML, compile, "
        "artifacts, DDL, locks, the temporary table).",
        "",
        "| phase | rows | fsql s | fsql rows/s | raw COPY s | raw rows/s | ratio (raw s / fsql s) | goal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for phase, r in results["materialize"].items():
        lines.append(
            f"| {phase} | {r['rows']:,} | {r['fsql_s']:.2f} | {r['rows'] / r['fsql_s']:,.0f} | {r['raw_s']:.2f} | "
            f"{r['rows'] / r['raw_s']:,.0f} | {r['ratio']:.2f} | {verdict(r['ratio'], GOALS[phase])} |"
        )
    lines += ["", "Where fsql's time goes (median seconds per step, both views together):", ""]
    phases = list(results["materialize"])
    lines += ["| step | " + " | ".join(phases) + " |", "| --- |" + " ---: |" * len(phases)]
    for step in STEPS:
        cells = " | ".join(f"{results['materialize'][p]['steps'][step]:.2f}" for p in phases)
        lines.append(f"| {step} | {cells} |")
    lines.append(
        "| total (fsql s) | " + " | ".join(f"{results['materialize'][p]['fsql_s']:.2f}" for p in phases) + " |"
    )
    lines += [
        "",
        "Every repetition (fsql s / raw s): "
        + "; ".join(
            f"{p}: " + ", ".join(f"{f:.2f}/{r:.2f}" for f, r in zip(m["all_fsql_s"], m["all_raw_s"], strict=True))
            for p, m in results["materialize"].items()
        ),
    ]
    return lines


def render_lookups(results: dict[str, Any]) -> list[str]:
    before = results["lookups_before_vacuum"]
    lines = [
        "## b. Online lookups (2-view service, random existing entities)",
        "",
        "One `OnlineStore` (from `Project.online_store()`, warmed up) answering `get_online_features(rows, "
        "service=..., now=...)`, against a raw psycopg prepared statement (`prepare=True`) that joins both "
        "online tables by primary key to `unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY` (with the same "
        "90-day ttl CASE), run with `plan_cache_mode = force_generic_plan` (the fastest raw form found: "
        "Postgres then skips planning). Between the two, fsql's lookup SQL with a generic plan, then checked "
        "out of the store's pool with fsql's session settings and key binding, split the gap into SQL text, "
        "pool and fsql's Python; query parameters are built outside the timing except in "
        "`get_online_features`. The first two sides use one of the store's pooled connections directly, "
        "between checkouts, so every side talks to the store's own server processes (none gains from where "
        "the OS schedules a backend of its own). The "
        "sides take turns in blocks of 25 calls, each on its own random entities (so none reads pages another "
        "has just cached); their answers for the same entities are checked equal. The tables are those the "
        "full update left, after `VACUUM ANALYZE`.",
        "",
        "| entities | side | p50 ms | p99 ms | p50 / raw | p99 / raw |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for size, r in results["lookups"].items():
        for side, label in SIDES.items():
            s, raw = r[side], r["raw"]
            lines.append(
                f"| {size} | {label} | {s['p50']:.3f} | {s['p99']:.3f} | {s['p50'] / raw['p50']:.2f} | "
                f"{s['p99'] / raw['p99']:.2f} |"
            )
    goals = [
        f"{entities(size)}: " + ", ".join(f"{q} {r['fsql'][q] / r['raw'][q]:.2f}x {met(r, q)}" for q in ("p50", "p99"))
        for size, r in results["lookups"].items()
    ]
    plans = results["lookup_plans"]
    lines += ["", f"Goal fsql <= {LOOKUP_GOAL}x raw: " + "; ".join(goals) + "."]
    lines += [
        "",
        f"fsql's pool connections run with plan_cache_mode = {plans['plan_cache_mode']}. The store's pool ended "
        f"with {plans['pool_size']} connection(s) for one caller ({plans['queued']} checkout(s) had to wait: the "
        "pool is opened without waiting for its first connection, and a waiting checkout makes it grow); "
        "psycopg_pool hands its connections out in turn, so one caller alternates between server processes.",
    ]
    lines += [
        "",
        "The raw query alone right after the full update, before the VACUUM (dead row versions, unset hint "
        "bits): "
        + "; ".join(f"{entities(size)}: p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms" for size, r in before.items())
        + ".",
        "",
        *render_python_steps(results),
    ]
    return lines


def entities(size: str) -> str:
    return f"{size} {'entity' if size == '1' else 'entities'}"


def met(r: dict[str, Any], quantile: str) -> str:
    return "met" if r["fsql"][quantile] / r["raw"][quantile] <= LOOKUP_GOAL else "missed"


def render_python_steps(results: dict[str, Any]) -> list[str]:
    sizes = results["lookups"]
    lines = [
        "The functions `get_online_features` calls, each timed alone in a loop (microseconds per call); the "
        "checkout is part of the pool side already, and what the first three leave of fsql's Python time "
        "(fsql - pool) is mostly building the result rows:",
        "",
    ]
    lines += ["| step | " + " | ".join(entities(s) for s in sizes) + " |", "| --- |" + " ---: |" * len(sizes)]
    for step in next(iter(sizes.values()))["python_us"]:
        lines.append(f"| {step} | " + " | ".join(f"{r['python_us'][step]:.1f}" for r in sizes.values()) + " |")
    return lines


def render_pit(results: dict[str, Any]) -> list[str]:
    p = results["pit"]
    tables = ", ".join(f"{name} {rows:,}" for name, rows in results["tables"].items())
    return [
        "## c. PIT training query: Postgres (lateral) against DuckDB (ASOF)",
        "",
        "Both through `Project.training_set(service=..., spine=...)`: on Postgres the sources are tables with "
        "the index `LateralStrategy.supporting_index` generates, and the spine is a table; on DuckDB the "
        "sources and spine are the parquet files. Times include compile and fetching the result as arrow. "
        "The plan is Postgres's EXPLAIN of the SQL fsql ran.",
        "",
        "| engine (strategy) | seconds (median) | every run |",
        "| --- | ---: | --- |",
        f"| Postgres (lateral) | {p['postgres']:.2f} | {', '.join(f'{s:.2f}' for s in p['all']['postgres'])} |",
        f"| DuckDB (ASOF) | {p['duckdb']:.2f} | {', '.join(f'{s:.2f}' for s in p['all']['duckdb'])} |",
        "",
        f"Postgres / DuckDB: {p['postgres'] / p['duckdb']:.1f}x (report only). Rows: {tables}; "
        f"{p['rows']:,} training rows, {p['non_null']:.0%} with a driver value inside the 90-day ttl. "
        f"Results equal: {'yes' if not p['differences'] else 'NO: ' + p['differences']}. "
        f"Postgres plan: {p['plan']}.",
    ]


def reading(results: dict[str, Any]) -> str:
    """One paragraph that reads the figures (generated, so it always matches them)."""
    phases = []
    for phase, r in results["materialize"].items():
        steps = r["steps"]
        upsert = f"the upsert {steps['upsert']:.2f} s, " if steps["upsert"] >= 0.005 else "no upsert, "
        if steps.get("rebuild beside", 0.0) >= 0.005:
            upsert = f"the rebuild {steps['rebuild beside']:.2f} s and swap {steps.get('swap', 0.0):.2f} s, "
        phases.append(
            f"a {phase} reaches {r['ratio']:.2f} of the raw COPY's rate ({verdict(r['ratio'], GOALS[phase])}): "
            f"of fsql's {r['fsql_s']:.2f} s, {upsert}the CSV encoding {steps['CSV encode']:.2f} s, the COPY "
            f"{steps['COPY']:.2f} s and the DuckDB read {steps['offline read (DuckDB)']:.2f} s, while the raw COPY "
            f"of the same rows takes {r['raw_s']:.2f} s, its encoding included"
        )
    looks = []
    for size, r in results["lookups"].items():
        ratios = [r["fsql"][q] / r["raw"][q] for q in ("p50", "p99")]
        looks.append(
            f"for {entities(size)} in {r['fsql']['p50']:.3f} ms at p50 "
            f"({ratios[0]:.2f}x raw) and {r['fsql']['p99']:.3f} ms at p99 ({ratios[1]:.2f}x) "
            f"({verdict(max(ratios), LOOKUP_GOAL, at_most=True)}); of the p50 gap, fsql's SQL text accounts for "
            f"{r['fsql_sql']['p50'] - r['raw']['p50']:+.3f} ms, the pool (checkout, fsql's session settings and "
            f"key types) for {r['pool']['p50'] - r['fsql_sql']['p50']:+.3f} ms and fsql's Python around the "
            f"query for {r['fsql']['p50'] - r['pool']['p50']:+.3f} ms"
        )
    before = results["lookups_before_vacuum"]
    looks.append(
        f"right after the full update, before VACUUM (autovacuum is {results['postgres']['autovacuum']} on "
        "this server), the raw query took "
        + " and ".join(
            f"{before[size]['p50']:.3f}/{before[size]['p99']:.3f} ms (p50/p99) for {entities(size)}, against "
            f"{r['raw']['p50']:.3f}/{r['raw']['p99']:.3f} ms after it"
            for size, r in results["lookups"].items()
        )
    )
    pit = results["pit"]
    return (
        f"Materializing, {'; '.join(phases)}. fsql looks features up {'; '.join(looks)}. "
        f"On Postgres the lateral PIT query takes {pit['postgres'] / pit['duckdb']:.1f}x DuckDB's ASOF "
        f"({pit['postgres']:.2f} s against {pit['duckdb']:.2f} s) for the same {pit['rows']:,} rows"
        f"{', with equal results' if not pit['differences'] else ', but the results differ'}; its plan has "
        f"{pit['plan']}."
    )


def render(results: dict[str, Any]) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in results["postgres"].items() if k != "server_version")
    head = [
        "# fsql on Postgres: materialization, online lookups, PIT training query",
        "",
        "Written by `benchmarks/online.py` from one run; every figure below was measured in that run.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {results['seconds']:.0f} s; 1-minute load "
        f"average {results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end (2 cores).",
        f"- Machine: {machine()}.",
        f"- Versions: {versions(results)}.",
        f"- Postgres settings: {settings} (the machine's local server, shared with other users).",
        f"- Command: `{results['command']}`; {results['args']['entities']:,} entities per view, "
        f"{results['args']['reps']} repetitions of materialization and PIT (medians shown), "
        f"{results['args']['calls']:,} timed lookups per side and batch size.",
        "- Data (DuckDB SQL, deterministic): view `driver_stats` (created timestamp, 90-day ttl) has one row per "
        "driver in each half of 2025 and a later-created correction for every tenth driver in the second "
        "half; view `rider_stats` (no created timestamp, no ttl, a text feature) has one row per rider in each "
        "half. The spine has one row per ten entities, at random times of 2025.",
        "",
        "## Reading",
        "",
        reading(results),
        "",
    ]
    body = [*head, *render_materialize(results), "", *render_lookups(results), "", *render_pit(results)]
    return "\n".join(body) + "\n"


def summary(results: dict[str, Any]) -> str:
    lines = [reading(results)]
    for phase, r in results["materialize"].items():
        lines.append(f"{phase}: fsql {r['rows'] / r['fsql_s']:,.0f} rows/s, raw {r['rows'] / r['raw_s']:,.0f} rows/s")
    for size, r in results["lookups"].items():
        lines.append(
            f"lookup {size}: "
            + ", ".join(f"{side} p50 {r[side]['p50']:.3f} p99 {r[side]['p99']:.3f} ms" for side in SIDES)
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
