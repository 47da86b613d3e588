"""`fsql serve` under load, against the raw floor and Feast's own feature server, in one run.

    python benchmarks/serve.py [--entities N] [--requests R] [--feast-python PATH | --no-feast]
                               [--url URL] [--schema S] [--stacks] [--write]

A 2-view service (drivers with a 7-day ttl, riders without) over N entities each (default
100k), materialized by `fsql build` into a Postgres schema (default fsql_serve_bench). The same
rows go into Feast's Postgres online store (schema `<S>_feast`) through
`FeatureStore.write_to_online_store`, by `benchmarks/feast_side.py` run in Feast's own venv. Then
three sides answer the same lookups:

- `fsql serve` itself, on its defaults (uvicorn, one process, a pool of 8 connections);
- `feast serve`: Feast 0.67's Python feature server on the same Postgres (one gunicorn worker,
  a pool of 8 connections, `--max-requests 0` so the worker is not restarted mid-run);
- the raw floor: a prepared psycopg SELECT of the same rows by primary key over both tables
  (no HTTP, no fsql), from 1 and 32 threads.

Before any timing, Feast's answers are checked equal to fsql's (values, statuses, event times;
Feast's JSON shape is the one fsql writes) for a sample of requests, unknown keys included.
Then for 1 and 100 entities a request, at concurrency 1 and 32, `hey` (Debian's load generator,
`apt-get install hey`) sends R POST /get-online-features requests on loopback to each server in
turn, and the floor runs R lookups, the three sides of a cell back to back. Last, one entity's
lookup is timed in-process, piece by piece (parse, lookup, JSON), to show where fsql's time goes.
`--write` replaces the serve section of benchmarks/RESULTS.md.

Feast is never installed into fsql's venv: make its own and point the script at it,

    python3 -m venv .feast-venv && .feast-venv/bin/pip install "feast[postgres]==0.67.0"

(`--feast-python`, or FSQL_BENCH_FEAST_PYTHON; default `.feast-venv/bin/python` at the repo
root; `feast` is taken from the same bin directory). `--stacks` first compares server stacks
(uvicorn with uvloop or asyncio's loop, one process or two workers, granian) at 1 entity, the measurement the
choice of stack rests on.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
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
DEFAULT_FEAST_PYTHON = os.environ.get("FSQL_BENCH_FEAST_PYTHON", str(HERE.parent / ".feast-venv" / "bin" / "python"))
NOW = datetime.now(UTC).replace(microsecond=0)
FSQL, FEAST, RAW = "fsql serve", "feast serve", "raw prepared SELECT"
BARE = "HTTP floor: bare ASGI app on uvicorn"
BEGIN, END = "<!-- serve.py: begin -->", "<!-- serve.py: end -->"

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
    "SELECT d.rate, d.label, d.feature_ts, r.trips, r.feature_ts FROM unnest(%(d)s::bigint[], %(r)s::bigint[]) "
    'WITH ORDINALITY AS k(driver_id, rider_id, n) LEFT JOIN "{schema}".driver_stats d ON d.driver_id = k.driver_id '
    'LEFT JOIN "{schema}".rider_stats r ON r.rider_id = k.rider_id ORDER BY k.n'
)

Row = tuple[str, int, int, dict[str, float]]  # side, entities a request, concurrency, figures


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


def load_feast(feast_python: str, repo: Path, data: Path, url: str, schema: str) -> None:
    """The same rows into Feast's Postgres online store, by feast_side.py in Feast's venv."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    command = [feast_python, str(HERE / "feast_side.py"), "--repo", str(repo), "--data", str(data)]
    command += ["--host", parsed.host or "127.0.0.1", "--port", str(parsed.port or 5432)]
    command += ["--database", parsed.database or "postgres", "--user", parsed.username or "postgres"]
    command += ["--password", parsed.password or "", "--schema", schema]
    subprocess.run(command, check=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], port: int, what: str, *, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group; return once GET /health answers 200."""
    process = subprocess.Popen(command, cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"the {what} server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the server and its workers (gunicorn forks one), by the group it was started in."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_fsql(root: Path, stack: str) -> tuple[subprocess.Popen[bytes], int]:
    """`fsql serve` itself ("cli", on its defaults: uvicorn, a pool of 8), or a stack of `child`."""
    port = free_port()
    command = [sys.executable, __file__, "child", "--project", str(root), "--stack", stack, "--port", str(port)]
    if stack == "cli":
        command = [str(Path(sys.executable).parent / "fsql"), "serve", "--project-dir", str(root), "--port", str(port)]
    return start(command, port, f"fsql ({stack})"), port


def start_feast(feast_python: str, repo: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    feast = str(Path(feast_python).parent / "feast")
    command = [feast, "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log"]
    command += ["--workers", "1", "--max-requests", "0"]
    return start(command, port, "feast", cwd=repo), port


def child(project: str, stack: str, port: int) -> None:
    """Run one server stack in this process (the parent measures it with hey).

    Stacks: "uvicorn" (fsql's app as `fsql serve` runs it: uvloop, httptools), "uvicorn-asyncio"
    (the standard event loop instead of uvloop), "uvicorn-w2" (two worker processes, each with its
    own store and pool of 8), "granian" (the app on granian's Rust HTTP server, one worker).
    """
    if stack == "bare":
        import uvicorn

        uvicorn.run(bare_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    os.environ["FSQL_BENCH_PROJECT"] = project
    if stack == "granian-embed":  # granian in this process, on this process's asyncio loop
        import asyncio

        from granian.constants import Interfaces
        from granian.server.embed import Server

        server = Server(bench_app(), address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False)
        asyncio.run(server.serve())
        return
    if stack.startswith("granian"):
        from granian import Granian
        from granian.constants import Interfaces

        sys.path.insert(0, str(HERE))
        Granian("serve:bench_app", address="127.0.0.1", port=port, interface=Interfaces.ASGI, factory=True).serve()
        return
    import uvicorn

    loop = "asyncio" if stack == "uvicorn-asyncio" else "auto"
    workers = 2 if stack == "uvicorn-w2" else None
    sys.path.insert(0, str(HERE))
    uvicorn.run(
        "serve:bench_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        loop=loop,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def bench_app() -> Any:
    """fsql's app for a `child` stack: a store of 8 connections on FSQL_BENCH_PROJECT (per worker)."""
    import fsql.server.app as server_app

    store = fsql.load_project(os.environ["FSQL_BENCH_PROJECT"]).online_store(max_connections=8)
    return server_app.create_app(store)


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The HTTP floor: uvicorn, the request parsed and an answer of fsql's shape and size written
    with orjson, and nothing else (no Starlette, no thread, no database)."""
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    answer: Any = {"status": "ok"}
    if scope["path"] == "/get-online-features":
        keys = orjson.loads(b"".join(chunks))["entities"]["driver_id"]
        n = len(keys)
        none, at = ["1970-01-01T00:00:00Z"] * n, ["2026-01-01T00:00:00Z"] * n  # keys have no event time
        values: list[list[Any]] = [keys, keys, [0.5] * n, ["x"] * n, keys]
        times = [none, none, at, at, at]
        results = [
            {"values": v, "statuses": ["PRESENT"] * n, "event_timestamps": t}
            for v, t in zip(values, times, strict=True)
        ]
        answer = {
            "metadata": {"feature_names": ["driver_id", "rider_id", "rate", "label", "trips"]},
            "results": results,
        }
    payload = orjson.dumps(answer)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def handler_seconds(port: int) -> tuple[float, int]:
    """fsql's own count of POST /get-online-features and the seconds spent in the handler (/metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    total = re.search(r'fsql_request_duration_seconds_sum\{endpoint="/get-online-features"\} ([\d.e+-]+)', text)
    count = re.search(r'fsql_request_duration_seconds_count\{endpoint="/get-online-features"\} (\d+)', text)
    return (float(total.group(1)), int(count.group(1))) if total and count else (0.0, 0)


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every live process in a process group, from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def body(keys: list[int]) -> bytes:
    return orjson.dumps({"feature_service": "both", "entities": {"driver_id": keys, "rider_id": keys}})


def post(port: int, payload: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/get-online-features", data=payload, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(orjson.loads(answer.read()))


def columns(answer: dict[str, Any]) -> dict[str, tuple[list[Any], list[str], list[datetime]]]:
    """Feast's response shape, as (values, statuses, event times) by column name."""
    names = answer["metadata"]["feature_names"]
    return {
        name: (
            result["values"],
            result["statuses"],
            [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in result["event_timestamps"]],
        )
        for name, result in zip(names, answer["results"], strict=True)
    }


def check_equal(fsql_port: int, feast_port: int, samples: list[list[int]]) -> int:
    """Feast's answers equal fsql's: the same columns, values, statuses and event times.

    Raises:
        AssertionError: the first request they disagree on, with both answers' differing column.
    """
    rows = 0
    for keys in samples:
        payload = body(keys)
        ours, theirs = post(fsql_port, payload), post(feast_port, payload)
        # The same columns, not always in the same order: Feast 0.67 put label before rate in one run,
        # after it in another.
        if sorted(ours["metadata"]["feature_names"]) != sorted(theirs["metadata"]["feature_names"]):
            raise AssertionError(f"feature names differ: {ours['metadata']} vs {theirs['metadata']}")
        theirs_by_name = columns(theirs)
        for name, mine in columns(ours).items():
            other = theirs_by_name[name]
            if mine != other:
                raise AssertionError(f"keys {keys[:5]}...: column {name!r} differs:\n fsql  {mine}\n feast {other}")
        rows += len(keys)
    return rows


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
    mean = float(re.search(r"Average:\s+([\d.]+) secs", output).group(1)) * 1000  # type: ignore[union-attr]
    count = int(re.search(r"\[200\]\s+(\d+) responses", output).group(1))  # type: ignore[union-attr]
    return {"p50": percentile["50"], "p99": percentile["99"], "rps": rps, "mean": mean, "count": count}


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
    return {"p50": cuts[49], "p99": cuts[98], "rps": len(times) / elapsed, "mean": statistics.fmean(times)}


def stacks(root: Path, rng: random.Random, entities: int, requests: int) -> list[Row]:
    """fsql's server stacks against each other at 1 entity (`--stacks`): all of them up at once, three
    rounds of every stack back to back per concurrency, the median of each figure over the rounds."""
    import importlib.util

    payload = body([rng.randint(1, entities)])
    found = ("granian", "granian-embed") if importlib.util.find_spec("granian") else ()
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for stack in ("uvicorn", "uvicorn-asyncio", "uvicorn-w2", *found):
            servers[stack] = start_fsql(root, stack)
            hey(servers[stack][1], payload, 4, 400)
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        for concurrency in (1, 32):
            for _ in range(3):
                for stack, (_, port) in servers.items():
                    runs.setdefault((stack, concurrency), []).append(hey(port, payload, concurrency, requests))
                    print(stack, concurrency, runs[(stack, concurrency)][-1], flush=True)
    finally:
        for server, _ in servers.values():
            stop(server)
    return [
        (
            f"{FSQL} ({stack}, median of 3)",
            1,
            concurrency,
            {k: statistics.median(r[k] for r in figures) for k in figures[0]},
        )
        for (stack, concurrency), figures in runs.items()
    ]


def run(args: argparse.Namespace) -> None:
    from fsql.engines.postgres import conninfo

    feast_schema = f"{args.schema}_feast"
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(conninfo(args.url), autocommit=True) as admin:
        for schema in (args.schema, feast_schema):
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        servers: list[subprocess.Popen[bytes]] = []
        try:
            started = time.perf_counter()
            root = make_project(Path(tmp) / "p", args.url, args.schema, args.entities)
            print(f"fsql build: {time.perf_counter() - started:.1f} s", flush=True)
            rng = random.Random(7)
            rows = stacks(root, rng, args.entities, args.requests) if args.stacks else []
            server, port = start_fsql(root, "cli")
            servers.append(server)
            sides = {FSQL: (port, server.pid)}
            server, port = start_fsql(root, "bare")
            servers.append(server)
            sides[BARE] = (port, server.pid)
            checked = 0
            if not args.no_feast:
                repo = Path(tmp) / "feast_repo"
                load_feast(args.feast_python, repo, root / "data", args.url, feast_schema)
                server, port = start_feast(args.feast_python, repo)
                servers.append(server)
                sides[FEAST] = (port, server.pid)
                samples = [[rng.randint(1, args.entities)] for _ in range(40)]
                samples += [[rng.randint(1, args.entities) for _ in range(100)] for _ in range(4)]
                samples += [[args.entities + 1], [1, args.entities + 7, 2]]  # unknown keys: NOT_FOUND
                checked = check_equal(sides[FSQL][0], port, samples)
                print(f"Feast's answers equal fsql's for {len(samples)} requests, {checked} entity rows", flush=True)
            rows += cells(args, rng, sides)
            breakdown = profile_lookup(root, args, rng)
        finally:
            for server in servers:
                stop(server)
            for schema in (args.schema, feast_schema):
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    report(rows, breakdown, checked, load_start, args)


def cells(args: argparse.Namespace, rng: random.Random, sides: dict[str, tuple[int, int]]) -> list[Row]:
    """Each (entities, concurrency) cell on every side, back to back, so load drifts hit all alike.

    `sides` maps a server's name to its port and process group; the group's CPU time over a cell
    (gunicorn's worker included) over the requests is the server's CPU cost of a request.
    """
    rows: list[Row] = []
    for size in (1, 100):
        payload = body([rng.randint(1, args.entities) for _ in range(size)])
        for port, _ in sides.values():
            hey(port, payload, 4, 200)  # warm-up: connections, prepared statements, caches
        for concurrency in (1, 32):
            for side, (port, group) in sides.items():
                before = handler_seconds(port) if side == FSQL else (0.0, 0)
                cpu = group_cpu_seconds(group)
                figures = hey(port, payload, concurrency, args.requests)
                figures["cpu"] = (group_cpu_seconds(group) - cpu) / figures["count"] * 1000
                if side == FSQL:
                    after = handler_seconds(port)
                    figures["handler"] = (after[0] - before[0]) / max(after[1] - before[1], 1) * 1000
                rows.append((side, size, concurrency, figures))
                print(rows[-1], flush=True)
            keys = [[rng.randint(1, args.entities) for _ in range(size)] for _ in range(args.requests)]
            rows.append((RAW, size, concurrency, raw_floor(args.url, args.schema, keys, concurrency)))
            print(rows[-1], flush=True)
    return rows


def profile_lookup(root: Path, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """1 and 100 entities' lookups in this process, piece by piece, and a profile of the 100-entity
    handler body: where fsql's time goes outside HTTP."""
    from fsql.engines.postgres import conninfo
    from fsql.server.feast_json import read_request, write_response

    calls = 1000
    store = fsql.load_project(root).online_store(max_connections=1)
    sql = RAW_SQL.format(schema=args.schema)
    medians: dict[int, dict[str, float]] = {}
    try:
        with psycopg.connect(conninfo(args.url), autocommit=True) as connection:
            for size in (1, 100):
                chosen = [[rng.randint(1, args.entities) for _ in range(size)] for _ in range(calls)]
                payloads = [body(keys) for keys in chosen]

                def raw(i: int, chosen: list[list[int]] = chosen) -> Any:
                    return connection.execute(sql, {"d": chosen[i], "r": chosen[i]}, prepare=True).fetchall()

                def lookup(i: int, payloads: list[bytes] = payloads) -> Any:
                    query = read_request(orjson.loads(payloads[i]), store.definitions, max_entities=1000)
                    return store.lookup(query.entity_rows, service=query.service)

                def handler(i: int, lookup: Callable[[int], Any] = lookup) -> bytes:
                    answer = write_response(lookup(i))
                    return orjson.dumps(answer, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)

                steps: dict[str, Callable[[int], Any]] = {
                    "raw prepared SELECT": raw,
                    "read_request + OnlineStore.lookup": lookup,
                    "the whole handler body (+ write_response, orjson)": handler,
                }
                for _ in range(2):  # the second pass, warm, is the one kept
                    medians[size] = {name: _median_ms(step, calls) for name, step in steps.items()}
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(calls):
            handler(i)
        profiler.disable()
    finally:
        store.close()
    stats = pstats.Stats(profiler)
    top = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:8]  # type: ignore[attr-defined]
    profile = [(f"{Path(f).name}:{line} {name}", tt / calls * 1000) for (f, line, name), (_, _, tt, _, _) in top]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return {"medians": medians, "profile": profile, "profile_text": text.getvalue(), "calls": calls}


def _median_ms(step: Callable[[int], Any], calls: int) -> float:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def versions(args: argparse.Namespace) -> str:
    from fsql.engines.postgres import conninfo

    with psycopg.connect(conninfo(args.url)) as connection:
        server = str(connection.execute("SHOW server_version").fetchone()[0]).split(" ")[0]  # type: ignore[index]
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    ours = ", ".join(f"{p} {version(p)}" for p in ("uvicorn", "starlette", "psycopg", "orjson"))
    text = f"python {platform.python_version()}, fsql git {git.strip()} ({ours}), PostgreSQL {server}"
    hey_version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "hey"], capture_output=True, text=True)
    text += f", hey {hey_version.stdout.strip() or '?'}"
    if not args.no_feast:
        script = "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in %r}))"
        packages = ("feast", "fastapi", "uvicorn", "gunicorn", "psycopg", "protobuf")
        found = subprocess.run([args.feast_python, "-c", script % (packages,)], capture_output=True, text=True)
        theirs = json.loads(found.stdout)
        text += f"; Feast's venv: {', '.join(f'{p} {v}' for p, v in theirs.items())}"
    return text


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / (1 << 20)
    return f"{os.cpu_count()} cores ({model}), {memory:.1f} GiB RAM, {platform.machine()}, shared with other work"


def figure(rows: list[Row], side: str, size: int, concurrency: int) -> dict[str, float] | None:
    return next((f for s, n, c, f in rows if s == side and n == size and c == concurrency), None)


def goals(rows: list[Row]) -> list[str]:
    lines = []
    ours, floor = figure(rows, FSQL, 1, 1), figure(rows, RAW, 1, 1)
    if ours and floor:
        gap = ours["p50"] - floor["p50"]
        verdict = "met" if gap <= 1 else "missed"
        lines.append(
            f"- 1 entity, concurrency 1: fsql p50 {ours['p50']:.2f} ms, raw floor {floor['p50']:.2f} ms: "
            f"**{gap:+.2f} ms** (goal within 1 ms: {verdict})"
        )
    tail = figure(rows, FSQL, 1, 32)
    if tail:
        verdict = "met" if tail["p99"] < 10 else "missed"
        lines.append(f"- 1 entity, concurrency 32: fsql p99 **{tail['p99']:.2f} ms** (goal under 10 ms: {verdict})")
    ratios = []
    for size in (1, 100):
        for concurrency in (1, 32):
            mine, theirs = figure(rows, FSQL, size, concurrency), figure(rows, FEAST, size, concurrency)
            if mine and theirs:
                ratios.append(
                    f"{size} entit{'y' if size == 1 else 'ies'} c={concurrency}: {mine['rps'] / theirs['rps']:.1f}x"
                )
    if ratios:
        least = min(float(r.rsplit(" ", 1)[1][:-1]) for r in ratios)
        verdict = "met" if least >= 3 else "missed"
        lines.append(f"- fsql requests/s / Feast's: {'; '.join(ratios)} (goal >= 3x in every cell: {verdict})")
    return lines


def report(
    rows: list[Row], breakdown: dict[str, Any], checked: int, load_start: tuple[float, ...], args: argparse.Namespace
) -> None:
    load_end = os.getloadavg()
    command = " ".join(["python benchmarks/serve.py", *sys.argv[1:]])
    lines = [
        BEGIN,
        f"## fsql serve: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{command}`: {args.entities:,} entities per view, 2-view service (3 features), {args.requests} requests "
        f"a cell by `hey` on loopback (the floor: {args.requests} lookups from 1 or 32 threads); each cell's sides "
        f"run back to back. Load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
        f"(1 min). Machine: {machine()}.",
        f"Versions: {versions(args)}.",
        "",
        "Servers: `fsql serve` on its defaults (uvicorn with uvloop and httptools, one process, lookups awaited "
        "on the event loop over an async pool of 8 connections, lookups that queue for a connection sharing one "
        "statement); "
        "`feast serve --workers 1 --max-requests 0` (gunicorn, one uvicorn worker; no restart mid-run), "
        "Postgres online store with `conn_type: pool`, 8 connections. Both on the same Postgres. "
        "The HTTP floor is a bare ASGI app on the same uvicorn that parses the request and writes an answer "
        "of the same shape with orjson (no Starlette, no thread, no database). hey's latencies are 0.1 ms "
        "steps. \"In fsql's handler\" is the server's own measure (its /metrics latency sum over count for the "
        "cell): from the route's start to the response ready, waiting for a connection, lookup and JSON "
        "included; the rest "
        "of hey's mean is uvicorn, the event loop's queue and hey itself. Server CPU is the server's process "
        "group's user + system time over the cell (gunicorn's worker included; 10 ms ticks) over its requests."
        + (
            f" Before timing, Feast's answers were checked equal to fsql's (values, statuses, event times) "
            f"for {checked} entity rows, unknown keys included."
            if checked
            else ""
        ),
        "",
        "| entities a request | concurrency | side | p50 ms | p99 ms | mean ms | requests/s "
        "| server CPU ms a request | in fsql's handler, mean ms |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {c} | {s} | {f['p50']:.2f} | {f['p99']:.2f} | {f['mean']:.2f} | {f['rps']:,.0f} | "
        + (f"{f['cpu']:.2f} |" if "cpu" in f else " |")
        + (f" {f['handler']:.2f} |" if "handler" in f else " |")
        for s, n, c, f in rows
    ]
    lines += ["", "Goals (issue 10):", "", *goals(rows), ""]
    if breakdown:
        one, hundred = breakdown["medians"][1], breakdown["medians"][100]
        lines += [
            f"Where fsql's time goes outside HTTP: each piece in-process, median of {breakdown['calls']} calls on "
            "one connection, between the cells (the servers idle):",
            "",
            "| step | 1 entity, ms | 100 entities, ms |",
            "|---|---:|---:|",
            *[f"| {name} | {ms:.3f} | {hundred[name]:.3f} |" for name, ms in one.items()],
            "",
            "cProfile of the 100-entity handler body, own time per call (profiling inflates it):",
            "",
            "| function | ms a call |",
            "|---|---:|",
            *[f"| `{name}` | {ms:.3f} |" for name, ms in breakdown["profile"]],
            "",
        ]
    lines.append(END)
    text = "\n".join(lines)
    print(text)
    if breakdown:
        print(breakdown["profile_text"])
    if args.write:
        write_section(HERE / "RESULTS.md", text)


def write_section(path: Path, text: str) -> None:
    """Replace this script's section of RESULTS.md (or the old unmarked "## fsql serve" one)."""
    old = path.read_text()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        match = re.search(r"^## fsql serve.*?(?=^<!--|^## |\Z)", old, flags=re.S | re.M)
        new = (
            old[: match.start()] + text + "\n" + old[match.end() :]
            if match
            else old.rstrip("\n") + "\n\n" + text + "\n"
        )
    path.write_text(new)


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
    parser.add_argument(
        "--feast-python",
        default=DEFAULT_FEAST_PYTHON,
        help="Python of the venv Feast 0.67 is installed in (env FSQL_BENCH_FEAST_PYTHON).",
    )
    parser.add_argument("--no-feast", action="store_true", help="Leave Feast's server out.")
    parser.add_argument("--write", action="store_true", help="Replace the serve section of benchmarks/RESULTS.md.")
    args = parser.parse_args()
    if args.command == "child":
        child(args.project, args.stack, args.port)
        return
    if args.requests < 200:
        parser.error("--requests must be at least 200: with fewer at concurrency 32, hey prints no 99th percentile")
    if not args.no_feast and not Path(args.feast_python).exists():
        parser.error(f"no Feast venv at {args.feast_python}: make one (see the docstring), or pass --no-feast")
    run(args)


if __name__ == "__main__":
    main()
