"""`fsql serve` under load: latency of POST /get-online-features against the raw floor.

    python benchmarks/serve.py [--entities N] [--requests R] [--url URL] [--schema S] [--stacks]

One run, on this machine: a 2-view service (drivers with a ttl, riders without) over N
entities each (default 100k), materialized by `fsql build` into a Postgres schema (default
fsql_serve_bench, dropped at the end). Then, for 1 and 100 entities a request, at
concurrency 1 and 32, `hey` (Debian's load generator) sends R requests to the server on
loopback, and the same lookups run as a raw prepared psycopg SELECT by primary key over both
tables (the floor: no HTTP, no fsql), from 1 and 32 threads. p50/p99 and requests/s go to
benchmarks/RESULTS.md's serve section. `--stacks` first compares server stacks (uvicorn or
granian, lookup in a thread or on the event loop) at 1 entity, the measurement the choice
of stack rests on.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

import fsql
from fsql.build import BuildOptions

HERE = Path(__file__).resolve().parent
DEFAULT_URL = os.environ.get("FSQL_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime.now(UTC).replace(microsecond=0)

DEFINITIONS = """
entities:
  - {name: driver, join_keys: [{name: driver_id, type: bigint}]}
  - {name: rider, join_keys: [{name: rider_id, type: bigint}]}
sources:
  - name: drivers
    path: data/drivers.parquet
    timestamp: event_ts
    columns: {driver_id: bigint, event_ts: timestamp, rate: double, label: string}
  - name: riders
    path: data/riders.parquet
    timestamp: event_ts
    columns: {rider_id: bigint, event_ts: timestamp, trips: bigint}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: drivers
    ttl: 7d
    online: true
    features: [{name: rate, type: double}, {name: label, type: string}]
  - name: rider_stats
    entities: [rider]
    source: riders
    online: true
    features: [{name: trips, type: bigint}]
feature_services:
  - {name: both, features: [driver_stats, rider_stats]}
"""

RAW_SQL = (
    'SELECT d.rate, d.label, d.feature_ts, r.trips, r.feature_ts FROM unnest(%(d)s::bigint[], %(r)s::bigint[]) '
    'WITH ORDINALITY AS k(driver_id, rider_id, n) LEFT JOIN "{schema}".driver_stats d ON d.driver_id = k.driver_id '
    'LEFT JOIN "{schema}".rider_stats r ON r.rider_id = k.rider_id ORDER BY k.n'
)


def make_project(root: Path, url: str, schema: str, entities: int) -> Path:
    (root / "definitions").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "fsql_project.yml").write_text("name: bench\n")
    (root / "profiles.yml").write_text(
        f"bench:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{url}'\n      online_schema: {schema}\n"
    )
    (root / "definitions" / "defs.yml").write_text(DEFINITIONS)
    ids = list(range(1, entities + 1))
    seen = pa.array([NOW.replace(tzinfo=None) - timedelta(hours=1)] * entities, pa.timestamp("us"))
    pq.write_table(
        pa.table({"driver_id": ids, "event_ts": seen, "rate": [i / entities for i in ids], "label": ["x"] * entities}),
        root / "data" / "drivers.parquet",
    )
    pq.write_table(pa.table({"rider_id": ids, "event_ts": seen, "trips": ids}), root / "data" / "riders.parquet")
    fsql.load_project(root).build(BuildOptions(end=NOW))
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(root: Path, stack: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "child", "--project", str(root), "--stack", stack, "--port", str(port)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {stack} server did not start")


def child(project: str, stack: str, port: int) -> None:
    """Run one server stack in this process (the parent measures it with hey)."""
    import fsql.server.app as server_app

    if stack.endswith("-loop"):  # the lookup on the event loop itself, no thread hop

        async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        server_app.run_in_threadpool = inline  # type: ignore[assignment]
    store = fsql.load_project(project).online_store(max_connections=8)
    app = server_app.create_app(store)
    if stack.startswith("granian"):
        import asyncio

        from granian.constants import Interfaces
        from granian.server.embed import Server

        asyncio.run(Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI).serve())
    else:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def body(keys: list[int]) -> bytes:
    return orjson.dumps({"feature_service": "both", "entities": {"driver_id": keys, "rider_id": keys}})


def hey(port: int, payload: bytes, concurrency: int, requests: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(payload)
        file.flush()
        command = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST", "-T", "application/json"]
        output = subprocess.run(
            [*command, "-D", file.name, f"http://127.0.0.1:{port}/get-online-features"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    codes = re.findall(r"\[(\d{3})\]\s+\d+ responses", output)
    if codes != ["200"]:
        raise RuntimeError(f"non-200 responses:\n{output}")
    percentile = {m[0]: float(m[1]) * 1000 for m in re.findall(r"(\d+)%+ in ([\d.]+) secs", output)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return {"p50": percentile["50"], "p99": percentile["99"], "rps": rps}


def raw_floor(url: str, schema: str, keys: list[list[int]], concurrency: int) -> dict[str, float]:
    """The same rows by a prepared SELECT over psycopg, from `concurrency` threads."""
    from fsql.engines.postgres import conninfo

    sql = RAW_SQL.format(schema=schema)
    times: list[float] = []
    lock = threading.Lock()
    share = len(keys) // concurrency

    def worker(batch: list[list[int]]) -> None:
        with psycopg.connect(conninfo(url), autocommit=True) as connection:
            for warm in batch[:20]:
                connection.execute(sql, {"d": warm, "r": warm}, prepare=True).fetchall()
            mine = []
            for chosen in batch:
                started = time.perf_counter()
                connection.execute(sql, {"d": chosen, "r": chosen}, prepare=True).fetchall()
                mine.append((time.perf_counter() - started) * 1000)
            with lock:
                times.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(keys[i * share : (i + 1) * share],)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(times, n=100)
    return {"p50": cuts[49], "p99": cuts[98], "rps": len(times) / elapsed}


def run(args: argparse.Namespace) -> None:
    from fsql.engines.postgres import conninfo

    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(conninfo(args.url), autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
        try:
            root = make_project(Path(tmp) / "p", args.url, args.schema, args.entities)
            rng = random.Random(7)
            rows: list[tuple[str, int, str, dict[str, float]]] = []
            stacks = ["uvicorn", "uvicorn-loop", "granian"] if args.stacks else ["uvicorn"]
            for stack in stacks:
                port = free_port()
                server = start_server(root, stack, port)
                try:
                    for size in (1, 100) if stack == "uvicorn" else (1,):
                        payload = body([rng.randint(1, args.entities) for _ in range(size)])
                        hey(port, payload, 4, 200)  # warm-up: connections, prepared statements
                        for concurrency in (1, 32):
                            figures = hey(port, payload, concurrency, args.requests)
                            rows.append((f"fsql serve ({stack})", size, str(concurrency), figures))
                            print(rows[-1], flush=True)
                finally:
                    server.terminate()
                    server.wait()
            for size in (1, 100):
                for concurrency in (1, 32):
                    keys = [[rng.randint(1, args.entities) for _ in range(size)] for _ in range(args.requests)]
                    floor = raw_floor(args.url, args.schema, keys, concurrency)
                    rows.append(("raw prepared SELECT", size, str(concurrency), floor))
                    print(rows[-1], flush=True)
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
    report(rows, args)


def report(rows: list[tuple[str, int, str, dict[str, float]]], args: argparse.Namespace) -> None:
    lines = [
        f"\n## fsql serve ({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {args.entities:,} entities per view, {args.requests} requests a cell)\n",
        "| side | entities a request | concurrency | p50 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {n} | {c} | {f['p50']:.2f} | {f['p99']:.2f} | {f['rps']:,.0f} |" for s, n, c, f in rows]
    print("\n".join(lines))
    if args.write:
        with (HERE / "RESULTS.md").open("a") as results:
            results.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("child")
    server.add_argument("--project", required=True)
    server.add_argument("--stack", required=True)
    server.add_argument("--port", type=int, required=True)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default="fsql_serve_bench")
    parser.add_argument("--stacks", action="store_true")
    parser.add_argument("--write", action="store_true", help="Append the table to benchmarks/RESULTS.md.")
    args = parser.parse_args()
    if args.command == "child":
        child(args.project, args.stack, args.port)
    else:
        run(args)


if __name__ == "__main__":
    main()
