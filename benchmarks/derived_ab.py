"""What derived features add to a lookup, main's code against this checkout's, interleaved in one run.

    python benchmarks/derived_ab.py --main DIR [--main-python PY] [--url DSN] [--parts P,...] [--rounds N]

The example's `ride_offer_scoring` (2 features + 6 derived over 4 inputs and 3 request fields, the
request the same in every row) against a plain lookup of the same 4 inputs of the same 2 views, 1 and
100 entities, on one built copy of the example whose seed data are moved forward by whole hours so
that its newest rows are at most an hour old (lookups at the clock see fresh values, as a service's
do). `--main DIR` is a tree of the code to compare with (e.g. `git archive main | tar -x -C DIR`),
imported in front of `--main-python`'s packages (default: this interpreter). Parts:

- `statements`: the bare statements on one connection, prepared, binary, one of each per round in a
  rotating order: the plain one, main's derived one, and this checkout's in the shape it sends for
  this request (request fields as scalars) and with the same values as arrays (rows that differ).
- `lookup`: `store.lookup`, sequential, in a worker process per side (main's, this checkout's),
  each timing blocks of calls (default: one call a block); the blocks of the 2 sides x plain/derived
  alternate. Blocks of 100 calls read differently (1 entity: +26 % against +7 % for one call a block,
  the same code): what ran just before a call counts, so the default spreads it evenly.
- `http`: `fsql serve` of each side on loopback, one keep-alive client, concurrency 1, the
  requests to the 2 servers x plain/derived alternating one by one.

Medians (and p99 over HTTP) of each cell; the 1-minute load average is printed beside each part.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

T = datetime(2024, 3, 18, 9, 30, tzinfo=UTC)  # the example's build time, before the shift
SERVICE = "ride_offer_scoring"
PLAIN = [
    "rider_trip_windows:trips_30d",
    "rider_trip_windows:spend_30d",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:conv_rate",
]
SIZES = (1, 100)


def keys(count: int) -> list[dict[str, Any]]:
    return [{"rider_id": 1 + i, "driver_id": 1001 + i} for i in range(count)]


def request(now: datetime) -> dict[str, Any]:
    return {"offered_fare": 12.5, "offered_at": now, "pickup_eta_at": now + timedelta(minutes=3)}


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


# -- the worker: one side's `store.lookup`, in its own process --------------------------------------------


def worker(root: str) -> None:
    """Answer JSON commands on stdin, one a line: {"sql": true} or {"what", "count", "calls", "now"}."""
    import fsql

    project = fsql.load_project(root)
    with project.online_store(max_connections=1) as store:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("sql"):
                plans = (store.plan(SERVICE, None, None), store.plan(None, PLAIN, None))
                print(json.dumps({"derived": plans[0].sql, "plain": plans[1].sql}), flush=True)
                continue
            now = datetime.fromisoformat(command["now"])
            entities = keys(command["count"])
            if command["what"] == "plain":
                call = partial(store.lookup, entities, features=PLAIN, now=now)
            else:
                call = partial(store.lookup, [{**k, **request(now)} for k in entities], service=SERVICE, now=now)
            times = []
            for _ in range(command["calls"]):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            print(json.dumps({"times": times}), flush=True)


class Worker:
    def __init__(self, python: str, root: Path, code: str | None) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if code:
            env["PYTHONPATH"] = code
        command = [python, __file__, "worker", str(root)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.ask(None)["ready"]

    def ask(self, command: dict[str, Any] | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- the project ---------------------------------------------------------------------------------------------


def make_project(url: str, schema: str) -> tuple[Path, datetime]:
    """A built copy of the example, its seed data moved forward by whole hours; the build's end."""
    import fsql
    from fsql.build import BuildOptions

    root = Path(tempfile.mkdtemp(prefix="fsql-derived-ab-")) / "example"
    here = Path(__file__).resolve().parents[1]
    shutil.copytree(here, root, ignore=shutil.ignore_patterns("target", ".venv", ".feast-venv", ".git", "data"))
    online = url.replace("postgresql://", "postgresql+psycopg://", 1)
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online}'\n      online_schema: {schema}\n"
    )
    project = fsql.load_project(root)
    project.seed(scale=0.2, seed=7)
    shift = timedelta(hours=(datetime.now(UTC) - T) // timedelta(hours=1))
    for path in (root / "data").glob("*.parquet"):
        table = pq.read_table(path)
        for index, field in enumerate(table.schema):
            if pa.types.is_timestamp(field.type):
                moved = pc.add(table.column(index), pa.scalar(shift, pa.duration("us")))
                table = table.set_column(index, field, moved.cast(field.type))
        pq.write_table(table, path)
    end = T + shift
    result = project.build(BuildOptions(end=end))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    return root, end


# -- the parts -----------------------------------------------------------------------------------------------


def time_rounds(cells: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Each cell's times, one call of each a round in a rotating order (a cell: a no-argument call)."""
    names = list(cells)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.perf_counter()
            cells[name]()
            times[name].append(time.perf_counter() - started)
    return times


def statements(root: Path, main: Worker, end: datetime, rounds: int) -> list[str]:
    import fsql
    from fsql.online.lookup import SESSION_SQL, register_adapters

    theirs = main.ask({"sql": True})
    out = []
    with fsql.load_project(root).online_store(max_connections=1) as store:
        derived, plain = store.plan(SERVICE, None, None), store.plan(None, PLAIN, None)
        assert plain.sql == theirs["plain"], "the plain statement differs between the sides"
        with psycopg.connect(store.conninfo, autocommit=True) as connection:
            register_adapters(connection)
            connection.execute(SESSION_SQL)
            for count in SIZES:
                rows = [{**k, **request(end)} for k in keys(count)]
                arrays = derived.encode(derived.params(rows, end))
                sql, sent = derived.statement(derived.params(rows, end))
                run = {
                    "plain": (plain.sql, plain.encode(plain.params(keys(count), end))),
                    "main derived": (theirs["derived"], arrays),
                    "derived, scalars": (sql, sent),
                    "derived, arrays": (derived.sql, arrays),
                }
                answers = [connection.execute(s, p, prepare=True, binary=True).fetchall() for s, p in run.values()]
                assert answers[1] == answers[2] == answers[3], "the derived statements disagree"

                def call(s: str, p: dict[str, Any]) -> Any:
                    return lambda: connection.execute(s, p, prepare=True, binary=True).fetchall()

                cells = {name: call(s, p) for name, (s, p) in run.items()}
                time_rounds(cells, 200)
                started = load()
                times = time_rounds(cells, rounds)
                base = statistics.median(times["plain"])
                for name, kept in times.items():
                    median = statistics.median(kept)
                    out.append(
                        f"| {count} | {name} | {median * 1e3:.3f} | {(median / base - 1) * 100:+.0f} % | {started} |"
                    )
    return out


def lookups(sides: dict[str, Worker], end: datetime, rounds: int, block: int) -> list[str]:
    out = []
    for count in SIZES:
        cells = [(side, what) for side in sides for what in ("plain", "derived")]
        for side, what in cells:  # warm: prepared statements, plan caches
            sides[side].ask({"what": what, "count": count, "calls": 300, "now": end.isoformat()})
        times: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
        started = load()
        for r in range(rounds):
            for side, what in cells[r % len(cells) :] + cells[: r % len(cells)]:
                answer = sides[side].ask({"what": what, "count": count, "calls": block, "now": end.isoformat()})
                times[side, what] += answer["times"]
        for side in sides:
            plain, derived = (statistics.median(times[side, w]) for w in ("plain", "derived"))
            out.append(
                f"| {count} | {side} | {plain * 1e3:.3f} | {derived * 1e3:.3f} | {(derived / plain - 1) * 100:+.1f} % "
                f"| {started} to {load()} |"
            )
    return out


def serve(command: list[str], root: Path, code: str | None) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if code:
        env["PYTHONPATH"] = code
    process = subprocess.Popen(
        [*command, "serve", "--project-dir", str(root), "--port", str(port)], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{command} serve did not start")


def bodies(count: int) -> dict[str, bytes]:
    entities = {"rider_id": [k["rider_id"] for k in keys(count)], "driver_id": [k["driver_id"] for k in keys(count)]}
    now = datetime.now(UTC).replace(microsecond=0)
    fields = request(now)
    derived = {**entities, **{name: [value] * count for name, value in fields.items()}}
    return {
        "plain": orjson.dumps({"features": PLAIN, "entities": entities}),
        "derived": orjson.dumps({"feature_service": SERVICE, "entities": derived}),
    }


def over_http(servers: dict[str, int], rounds: int) -> list[str]:
    out = []
    clients = {side: http.client.HTTPConnection("127.0.0.1", port) for side, port in servers.items()}

    def post(side: str, body: bytes) -> bytes:
        clients[side].request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
        answer = clients[side].getresponse()
        data = answer.read()
        assert answer.status == 200, data
        return data

    for count in SIZES:
        sent = bodies(count)
        answers = {side: orjson.loads(post(side, sent["derived"])) for side in servers}
        first, *others = answers.values()
        assert all(other["results"] == first["results"] for other in others), "the servers' answers differ"
        cells = {(side, what): (lambda s=side, b=body: post(s, b)) for side in servers for what, body in sent.items()}
        time_rounds({f"{s}/{w}": call for (s, w), call in cells.items()}, 300)
        started = load()
        times = time_rounds({f"{s}/{w}": call for (s, w), call in cells.items()}, rounds)
        for side in servers:
            plain, derived = sorted(times[f"{side}/plain"]), sorted(times[f"{side}/derived"])
            p50 = statistics.median(plain), statistics.median(derived)
            p99 = plain[int(len(plain) * 0.99)], derived[int(len(derived) * 0.99)]
            out.append(
                f"| {count} | {side} | {p50[0] * 1e3:.3f} / {p50[1] * 1e3:.3f} | {(p50[1] / p50[0] - 1) * 100:+.1f} % "
                f"| {p99[0] * 1e3:.3f} / {p99[1] * 1e3:.3f} | {started} to {load()} |"
            )
    for client in clients.values():
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--main", required=True, help="a tree of the code to compare with (its fsql/ package)")
    parser.add_argument("--main-python", default=sys.executable, help="the interpreter whose packages it uses")
    parser.add_argument("--url", default=os.environ.get("FSQL_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--parts", default="statements,lookup,http")
    parser.add_argument("--rounds", type=int, default=2000, help="rounds of the statements and HTTP parts")
    parser.add_argument("--blocks", type=int, default=3000, help="rounds of blocks of the lookup part")
    parser.add_argument("--block", type=int, default=1, help="calls in a block of the lookup part")
    parser.add_argument("--keep", action="store_true", help="keep the built project and its schema (printed)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    schema = f"fsql_derived_ab_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    here = Path(__file__).resolve().parents[1]
    rev = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "fsql"], capture_output=True, text=True)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {load()}, this checkout git {rev.stdout.strip()}", end="")
    print(" (with uncommitted changes)" if dirty.stdout.strip() else "", f"against {args.main}")
    workers: dict[str, Worker] = {}
    servers: list[subprocess.Popen[bytes]] = []
    try:
        root, end = make_project(args.url, schema)
        workers = {"main": Worker(args.main_python, root, args.main), "branch": Worker(sys.executable, root, None)}
        if "statements" in parts:
            print("\n| entities | statement | median ms | vs plain | load |\n|---:|---|---:|---:|---:|")
            print("\n".join(statements(root, workers["main"], end, args.rounds)))
        if "lookup" in parts:
            print(
                "\n| entities | code | plain p50 ms | derived p50 ms | overhead | load |\n|---:|---|---:|---:|---:|---|"
            )
            print("\n".join(lookups(workers, end, args.blocks, args.block)))
        if "http" in parts:
            started = {
                "main": serve([str(Path(args.main_python).parent / "fsql")], root, args.main),
                "branch": serve([str(Path(sys.executable).parent / "fsql")], root, None),
            }
            servers = [process for process, _ in started.values()]
            print(
                "\n| entities | code | plain / derived p50 ms | overhead | plain / derived p99 ms | load |"
                "\n|---:|---|---:|---:|---:|---|"
            )
            print("\n".join(over_http({side: port for side, (_, port) in started.items()}, args.rounds)))
    finally:
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
        for each in workers.values():
            each.close()
        if args.keep:
            print(f"kept schema {schema} and the project at {root}")
        else:
            with psycopg.connect(args.url, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker(sys.argv[2])
    else:
        main()
