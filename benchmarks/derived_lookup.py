"""What derived features add to an online lookup: the example's `ride_offer_scoring` (2 features +
6 derived over 4 inputs and 3 request fields) against a plain lookup of the same 4 input features
of the same 2 views, 1 entity and 100 entities, sequential and interleaved (one of each a round),
on a built copy of the example.

    python benchmarks/derived_lookup.py postgresql://postgres@127.0.0.1:5432/test [iterations]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg

import fsql
from fsql.build import BuildOptions

T = datetime(2024, 3, 18, 9, 30, tzinfo=UTC)
PLAIN = [
    "rider_trip_windows:trips_30d",
    "rider_trip_windows:spend_30d",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:conv_rate",
]


def main(dsn: str, iterations: int) -> None:
    schema = f"fsql_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    root = Path(tempfile.mkdtemp()) / "example"
    shutil.copytree(
        Path(__file__).resolve().parents[1],
        root,
        ignore=shutil.ignore_patterns("target", ".venv", ".feast-venv", ".git"),
    )
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{url}'\n      online_schema: {schema}\n"
    )
    try:
        project = fsql.load_project(root)
        project.seed(scale=0.2, seed=7)
        project.build(BuildOptions(end=T))
        with project.online_store(max_connections=1) as store:
            for count in (1, 100):
                keys = [{"rider_id": 1 + i, "driver_id": 1001 + i} for i in range(count)]
                request = {"offered_fare": 12.5, "offered_at": T, "pickup_eta_at": T + timedelta(minutes=3)}
                rows = [{**k, **request} for k in keys]
                plain, derived = _p50s(
                    [
                        partial(store.lookup, keys, features=PLAIN, now=T),
                        partial(store.lookup, rows, service="ride_offer_scoring", now=T),
                    ],
                    iterations,
                )
                print(
                    f"{count:>3} entities: plain p50 {plain * 1e3:.3f} ms, with derived {derived * 1e3:.3f} ms "
                    f"({(derived / plain - 1) * 100:+.1f} %)"
                )
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _p50s(calls: list[Callable[[], object]], iterations: int) -> list[float]:
    """Each call's median time, the calls interleaved (one of each per round) so load drifts hit all alike."""
    for _ in range(200):  # warm: prepared statements, plan cache
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(iterations):
        for call, kept in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            kept.append(time.perf_counter() - started)
    return [statistics.median(kept) for kept in times]


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3000)
