"""Aggregate views online: lookups finished from tiles, and materializing a day of events into tiles.

    python benchmarks/online_aggregates.py [--drivers N] [--calls C] [--url URL] [--schema S]

In one run, on data generated deterministically in DuckDB (parquet): N drivers (default
2,000) with one trip per driver and hour (random minute, every tenth cancelled) over 31 days,
and one profile row per driver.
a. materialization: a build up to day 30 (30 days of 1h tiles: N x 720 rows), then the build
   of day 31 alone, timed through `Project.build`, against a raw COPY of the same tile rows
   (the arrow the tile query returns) into an UNLOGGED table;
b. lookups of 1 and 100 entities of one request for one aggregate view (count, sum, avg and
   max over 1h, 1d, 7d and 30d, 1h granularity) and one latest-value view: fsql
   `get_online_features` against two raw prepared SELECTs (generic plans) computing the same
   windows from the same tiles and joining the profile table, as_of bound by the client: one
   FILTERed aggregate per window, and the tiles merged per window class first.
The sides take turns in blocks of 25 calls on random drivers; their answers are checked equal.
Prints a Markdown section for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

import fsql
from fsql.build import BuildOptions
from fsql.compile.tiles import compile_tiles
from fsql.engines.duckdb import DuckDBEngine
from fsql.engines.postgres import conninfo, postgres_type
from fsql.online.materialize_tiles import floor_to

DEFAULT_URL = os.environ.get("FSQL_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2025, 3, 1, tzinfo=UTC)
DAY30, DAY31 = START + timedelta(days=30), START + timedelta(days=31)

_TRIPS = """
SELECT d AS driver_id, TIMESTAMPTZ '{start}' + to_hours(h) + to_seconds(hash(d * 1000 + h) % 3600) AS requested_at,
       CASE WHEN hash(d + h * 7) % 10 = 0 THEN 'cancelled' ELSE 'completed' END AS status,
       (hash(d * 31 + h) % 5000)::DOUBLE / 100 AS fare
FROM range({n}) t(d), range(31 * 24) u(h)
"""
_DRIVERS = """
SELECT d AS driver_id, TIMESTAMPTZ '{start}' AS updated_at, 1 + (hash(d) % 400)::DOUBLE / 100 AS rating
FROM range({n}) t(d)
"""
_DEFINITIONS = """\
entities:
  - {name: driver, join_keys: [{name: driver_id, type: bigint}]}
sources:
  - name: trips
    path: data/trips.parquet
    timestamp: requested_at
    columns: {driver_id: bigint, requested_at: timestamptz, status: string, fare: double}
  - name: drivers
    path: data/drivers.parquet
    timestamp: updated_at
    columns: {driver_id: bigint, updated_at: timestamptz, rating: double}
feature_views:
  - name: driver_activity
    entities: [driver]
    source: trips
    online: true
    granularity: 1h
    aggregations:
      - {name: trips, function: count, filter: "status = 'completed'", windows: [1h, 1d, 7d, 30d]}
      - {name: spend, function: sum, expr: fare, windows: [1h, 1d, 7d, 30d]}
      - {name: fare_avg, function: avg, expr: fare, windows: [1h, 1d, 7d, 30d]}
      - {name: fare_max, function: max, expr: fare, windows: [1h, 1d, 7d, 30d]}
  - name: driver_profile
    entities: [driver]
    source: drivers
    online: true
    features:
      - {name: rating, type: double}
"""
_WINDOWS = (("1h", 3600), ("1d", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400))


def raw_lookup_sql(schema: str) -> str:
    """What a hand-written lookup over the same tiles computes, as_of bound by the client: each
    window one FILTERed aggregate over the entity's tiles."""
    values = []
    for name, seconds in _WINDOWS:
        since = f"t.bucket_start >= %(as_of)s - interval '{seconds} seconds'"
        values += [
            f"COALESCE(SUM(t.trips__count) FILTER (WHERE {since}), 0)::bigint AS trips_{name}",
            f"SUM(t.spend__sum) FILTER (WHERE {since}) AS spend_{name}",
            f"SUM(t.fare_avg__sum) FILTER (WHERE {since}) / NULLIF(SUM(t.fare_avg__count) FILTER (WHERE {since}), 0)"
            f" AS fare_avg_{name}",
            f"MAX(t.fare_max__max) FILTER (WHERE {since}) AS fare_max_{name}",
        ]
    return _raw_lookup(schema, f"SELECT {', '.join(values)} FROM {_ENTITY_TILES.format(schema=schema)}")


def raw_classes_sql(schema: str) -> str:
    """The same, the entity's tiles first merged once per window class (0 = the last hour, 1 = the
    rest of the last day, ...), each window then merged from at most four class rows."""
    classes = " ".join(
        f"WHEN t.bucket_start >= %(as_of)s - interval '{seconds} seconds' THEN {k}"
        for k, (_, seconds) in enumerate(_WINDOWS[:-1])
    )
    values = []
    for k, (name, _) in enumerate(_WINDOWS):
        up_to = f"c.k <= {k}"
        values += [
            f"COALESCE(SUM(c.trips) FILTER (WHERE {up_to}), 0)::bigint AS trips_{name}",
            f"SUM(c.spend) FILTER (WHERE {up_to}) AS spend_{name}",
            f"SUM(c.fare_sum) FILTER (WHERE {up_to}) / NULLIF(SUM(c.fare_count) FILTER (WHERE {up_to}), 0)"
            f" AS fare_avg_{name}",
            f"MAX(c.fare_max) FILTER (WHERE {up_to}) AS fare_max_{name}",
        ]
    per_class = (
        f"SELECT CASE {classes} ELSE {len(_WINDOWS) - 1} END AS k, SUM(t.trips__count) AS trips, "
        "SUM(t.spend__sum) AS spend, SUM(t.fare_avg__sum) AS fare_sum, SUM(t.fare_avg__count) AS fare_count, "
        f"MAX(t.fare_max__max) AS fare_max FROM {_ENTITY_TILES.format(schema=schema)} GROUP BY 1"
    )
    return _raw_lookup(schema, f"SELECT {', '.join(values)} FROM ({per_class}) c")


_ENTITY_TILES = (
    '"{schema}".driver_activity t WHERE t.driver_id = r.driver_id '
    "AND t.bucket_start >= %(as_of)s - interval '30 days' AND t.bucket_start < %(as_of)s"
)


def _raw_lookup(schema: str, windows: str) -> str:
    outputs = [f"a.{a}_{n}" for a in ("trips", "spend", "fare_avg", "fare_max") for n, _ in _WINDOWS]
    return (
        f"SELECT {', '.join(outputs)}, p.rating FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS r(driver_id, o) "
        f"LEFT JOIN LATERAL ({windows}) a ON true "
        f'LEFT JOIN "{schema}".driver_profile p ON p.driver_id = r.driver_id ORDER BY r.o'
    )


def generate(root: Path, drivers: int) -> None:
    (root / "data").mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, template in (("trips", _TRIPS), ("drivers", _DRIVERS)):
        sql = template.format(n=drivers, start=START.isoformat())
        con.execute(f"COPY ({sql}) TO '{root / 'data' / name}.parquet' (FORMAT parquet)")
    con.close()


def write_project(root: Path, url: str, schema: str) -> None:
    (root / "definitions").mkdir()
    (root / "fsql_project.yml").write_text("name: bench_agg\n")
    (root / "profiles.yml").write_text(
        f"bench_agg:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{url}'\n      online_schema: {schema}\n"
    )
    (root / "definitions" / "bench.yml").write_text(_DEFINITIONS)


def timed_build(project: Any, end: datetime) -> tuple[float, int]:
    started = time.perf_counter()
    result = project.build(BuildOptions(end=end, select="driver_activity"))
    seconds = time.perf_counter() - started
    (node,) = result.nodes
    assert node.status == "success", node.message
    return seconds, node.rows_written


def raw_copy(url: str, schema: str, tiles: pa.Table) -> float:
    """CSV encode + COPY + commit of the tile rows into a new UNLOGGED table, as fsql would send them."""
    columns = ", ".join(f'"{f.name}" {postgres_type(f.type).sql("postgres")}' for f in tiles.schema)
    with psycopg.connect(conninfo(url)) as con:
        con.execute("SET TIME ZONE 'UTC'")
        con.execute(f'CREATE UNLOGGED TABLE "{schema}".raw_tiles ({columns})')
        con.commit()
        started = time.perf_counter()
        for index, field in enumerate(tiles.schema):
            if pa.types.is_timestamp(field.type) and field.type.tz is not None:
                tiles = tiles.set_column(index, field.name, tiles.column(index).cast(pa.timestamp(field.type.unit)))
        buffer = io.BytesIO()
        pacsv.write_csv(tiles, buffer)
        with con.cursor() as cur, cur.copy(f'COPY "{schema}".raw_tiles FROM STDIN (FORMAT csv, HEADER true)') as cp:
            cp.write(buffer.getbuffer())
        con.commit()
        return time.perf_counter() - started


def day31_tiles(project: Any, root: Path) -> pa.Table:
    query = compile_tiles(project.definitions, "driver_activity", dialect="duckdb", file_root=root)
    engine = DuckDBEngine("duckdb:///:memory:", root=root)
    params = {"until": DAY31, "horizon": DAY31 - timedelta(days=30), "from_bucket": DAY30}
    return engine.query_arrow(query.sql, params={k: v for k, v in params.items() if k in query.parameters})


RAW_SIDES = {"raw": raw_lookup_sql, "raw_classes": raw_classes_sql}
SIDES = (*RAW_SIDES, "fsql")


def lookups(project: Any, url: str, schema: str, drivers: int, calls: int) -> dict[int, dict[str, list[float]]]:
    now = DAY31 + timedelta(minutes=20)
    as_of = floor_to(min(now, DAY31), 3600)  # T is DAY31: the build read every row before it
    raw_sql = {side: shape(schema) for side, shape in RAW_SIDES.items()}
    rng = random.Random(7)
    times: dict[int, dict[str, list[float]]] = {}
    request = {"features": ["driver_activity", "driver_profile"], "now": now}
    with project.online_store() as store, psycopg.connect(conninfo(url), autocommit=True) as raw:
        raw.execute("SET TIME ZONE 'UTC'")
        raw.execute("SET plan_cache_mode = force_generic_plan")
        for size in (1, 100):
            times[size] = {side: [] for side in SIDES}
            for block in range(-2, calls // 25):  # two blocks of warm-up
                for side in SIDES:
                    for _ in range(25):
                        ids = [rng.randrange(drivers) for _ in range(size)]
                        started = time.perf_counter()
                        if side in raw_sql:
                            raw.execute(raw_sql[side], {"ids": ids, "as_of": as_of}, prepare=True).fetchall()
                        else:
                            store.get_online_features([{"driver_id": i} for i in ids], **request)
                        if block >= 0:
                            times[size][side].append((time.perf_counter() - started) * 1000)
            ids = [rng.randrange(drivers) for _ in range(size)]
            mine = store.get_online_features([{"driver_id": i} for i in ids], **request)
            for sql in raw_sql.values():
                theirs = raw.execute(sql, {"ids": ids, "as_of": as_of}, prepare=True).fetchall()
                for got, row in zip(mine, theirs, strict=True):
                    values = [v for k, v in got.items() if k != "driver_id"]
                    assert all(_same(a, b) for a, b in zip(values, row, strict=True)), (got, row)
    return times


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a))
    return bool(a == b)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default="fsql_bench_agg")
    args = parser.parse_args()
    with psycopg.connect(conninfo(args.url), autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root, args.drivers)
        write_project(root, args.url, args.schema)
        project = fsql.load_project(root)
        first_s, first_rows = timed_build(project, DAY30)
        project.build(BuildOptions(end=DAY31, select="driver_profile"))
        day_s, day_rows = timed_build(project, DAY31)
        tiles = day31_tiles(project, root)
        assert tiles.num_rows == day_rows, (tiles.num_rows, day_rows)
        copy_s = raw_copy(args.url, args.schema, tiles)
        with psycopg.connect(conninfo(args.url), autocommit=True) as con:
            con.execute(f'VACUUM ANALYZE "{args.schema}".driver_activity')
            con.execute(f'VACUUM ANALYZE "{args.schema}".driver_profile')
            stored = con.execute(f'SELECT count(*) FROM "{args.schema}".driver_activity').fetchone()[0]
        times = lookups(project, args.url, args.schema, args.drivers, args.calls)
    with psycopg.connect(conninfo(args.url), autocommit=True) as con:
        server = con.execute("SHOW server_version").fetchone()[0]
        con.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
    report(args, first_s, first_rows, day_s, day_rows, copy_s, stored, times, server, time.perf_counter() - started)


def report(args: Any, first_s: float, first_rows: int, day_s: float, day_rows: int, copy_s: float, stored: int,
           times: dict[int, dict[str, list[float]]], server: str, total_s: float) -> None:  # fmt: skip
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## Aggregate views online (tiles): {now}\n")
    print(
        f"`python benchmarks/online_aggregates.py --drivers {args.drivers} --calls {args.calls}`; whole run "
        f"{total_s:.0f} s; load average {os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}; PostgreSQL {server}, fsql git "
        f"{os.popen('git rev-parse --short HEAD').read().strip()}.\n"
    )
    print(f"{args.drivers:,} drivers, one trip per driver and hour over 31 days; {stored:,} tiles stored.\n")
    print("| materialization | tile rows | fsql s | fsql rows/s | raw COPY s | raw rows/s | raw s / fsql s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| first build, 30 days | {first_rows:,} | {first_s:.2f} | {first_rows / first_s:,.0f} | | | |")
    print(
        f"| one new day | {day_rows:,} | {day_s:.2f} | {day_rows / day_s:,.0f} | {copy_s:.3f} | "
        f"{day_rows / copy_s:,.0f} | {copy_s / day_s:.2f} |\n"
    )
    print("| entities | side | p50 ms | p99 ms | p50 / raw | p99 / raw |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    labels = {
        "raw": "raw prepared SELECT, a FILTER per window",
        "raw_classes": "raw prepared SELECT, window classes",
        "fsql": "fsql `get_online_features`",
    }
    for size, sides in times.items():
        # The limit is the faster raw shape at each percentile.
        raw = {q: min(percentile(sides[r], q) for r in RAW_SIDES) for q in (0.5, 0.99)}
        for side in SIDES:
            p50, p99 = percentile(sides[side], 0.5), percentile(sides[side], 0.99)
            print(f"| {size} | {labels[side]} | {p50:.3f} | {p99:.3f} | {p50 / raw[0.5]:.2f} | {p99 / raw[0.99]:.2f} |")
    print(
        f"\n{len(times[1]['raw'])} timed calls per side and size, the sides taking turns in blocks of 25; "
        "the ratios are to the faster raw shape at each percentile; answers checked equal."
    )


if __name__ == "__main__":
    main()
