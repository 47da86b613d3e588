"""Deterministic data for the example ride-hailing project (run by `fsql seed`).

Writes data/*.parquet and data/*.csv plus a spine, data/ride_requests.parquet. The same
seed and scale always give the same files. Scale 1 takes a few seconds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

START = datetime(2024, 3, 1)
DAYS = 30
VEHICLES = ["sedan", "hatchback", "suv", "van", "electric"]


def generate(project_dir: Path, *, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    rng = random.Random(seed)
    n_drivers, n_riders, n_zones = max(10, int(400 * scale)), max(20, int(2000 * scale)), 16
    out = project_dir / "data"
    out.mkdir(parents=True, exist_ok=True)
    zones = [f"z{i:02d}" for i in range(n_zones)]
    tables = {
        "drivers.csv": _drivers(rng, n_drivers),
        "driver_stats.parquet": _driver_stats(rng, n_drivers),
        "riders.csv": _riders(rng, n_riders, zones),
        "trips.parquet": _trips(rng, int(30000 * scale), n_riders, n_drivers, zones),
        "zone_demand.parquet": _zone_demand(rng, zones),
        "ride_requests.parquet": _requests(rng, int(5000 * scale), n_riders, n_drivers, zones),
    }
    for name, table in tables.items():
        if name.endswith(".csv"):
            pacsv.write_csv(table, out / name)
        else:
            pq.write_table(table, out / name)
    return {f"data/{name}": table.num_rows for name, table in tables.items()}


def _minutes(rng: random.Random, days: int = DAYS) -> datetime:
    return START + timedelta(minutes=rng.randrange(days * 24 * 60))


def _drivers(rng: random.Random, n: int) -> pa.Table:
    rows = []
    for driver_id in range(1001, 1001 + n):
        updated = START - timedelta(days=rng.randrange(1, 400))
        for _ in range(rng.choice([1, 1, 2, 3])):  # some drivers change vehicle or rating during the month
            vehicle = rng.choice(VEHICLES)
            rows.append(
                (
                    driver_id,
                    updated,
                    vehicle,
                    7 if vehicle == "van" else rng.choice([4, 5]),
                    round(rng.uniform(3.5, 5.0), 2),
                    rng.random() > 0.05,
                )
            )
            updated = _minutes(rng)
    return _table(rows, ["driver_id", "updated_at", "vehicle_type", "seats", "rating", "active"])


def _driver_stats(rng: random.Random, n: int) -> pa.Table:
    rows = []
    for driver_id in range(1001, 1001 + n):
        when = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(6))
        while when < datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=DAYS):
            created = when + timedelta(minutes=rng.randrange(1, 20))
            conv, acc = round(rng.random(), 4), round(rng.random(), 4)
            rows.append((driver_id, when, created, conv if rng.random() > 0.02 else None, acc, rng.randrange(40)))
            if rng.random() < 0.03:  # a late correction of the same hour: same event_ts, newer created_ts
                rows.append(
                    (driver_id, when, created + timedelta(hours=2), round(rng.random(), 4), acc, rng.randrange(40))
                )
            when += timedelta(hours=rng.choice([1, 2, 3, 6, 12, 30]))
    return _table(
        rows,
        ["driver_id", "event_ts", "created_ts", "conv_rate", "acc_rate", "avg_daily_trips"],
        tz={"event_ts", "created_ts"},
    )


def _riders(rng: random.Random, n: int, zones: list[str]) -> pa.Table:
    rows = [
        (
            rider_id,
            START - timedelta(days=rng.randrange(0, 900)) + timedelta(days=rng.randrange(DAYS)),
            rng.random() < 0.15,
            rng.choice(zones),
        )
        for rider_id in range(1, n + 1)
    ]
    return _table(rows, ["rider_id", "signup_at", "is_premium", "home_zone"])


def _trips(rng: random.Random, n: int, n_riders: int, n_drivers: int, zones: list[str]) -> pa.Table:
    rows = []
    for trip_id in range(1, n + 1):
        requested = _minutes(rng)
        completed = rng.random() < 0.85
        rider = rng.randrange(1, n_riders + 1)
        driver = 1001 + (rider * 7 + rng.randrange(25)) % n_drivers  # riders meet the same drivers again
        distance = round(rng.expovariate(1 / 6), 2)
        rows.append(
            (
                trip_id,
                rider,
                driver,
                rng.choice(zones),
                requested,
                requested + timedelta(minutes=5 + int(distance * 2.5)) if completed else None,
                "completed" if completed else rng.choice(["cancelled", "no_driver"]),
                distance,
                round(2.5 + distance * 1.4, 2) if completed else 0.0,
                rng.choice([None, 3, 4, 5, 5, 5]) if completed else None,
            )
        )
    return _table(
        rows,
        [
            "trip_id",
            "rider_id",
            "driver_id",
            "zone_id",
            "requested_at",
            "completed_at",
            "status",
            "distance_km",
            "fare",
            "rating_by_rider",
        ],
    )


def _zone_demand(rng: random.Random, zones: list[str]) -> pa.Table:
    rows = []
    for zone in zones:
        for quarter in range(DAYS * 96):
            if rng.random() < 0.1:  # a missed window: the feature goes stale past its 1h ttl
                continue
            window_end = START + timedelta(minutes=15 * (quarter + 1))
            busy = 3 if 7 <= window_end.hour <= 9 or 17 <= window_end.hour <= 19 else 1
            rows.append((zone, window_end, rng.randrange(2, 20) * busy, rng.randrange(0, 15)))
    return _table(rows, ["zone_id", "window_end", "requests", "idle_drivers"])


def _requests(rng: random.Random, n: int, n_riders: int, n_drivers: int, zones: list[str]) -> pa.Table:
    rows = []
    for request_id in range(1, n + 1):
        rider = rng.randrange(1, n_riders + 1)
        rows.append(
            (
                request_id,
                rider,
                1001 + (rider * 7 + rng.randrange(30)) % n_drivers,
                rng.choice(zones),
                _minutes(rng),
                rng.random() < 0.7,
            )
        )
    return _table(rows, ["request_id", "rider_id", "driver_id", "zone_id", "event_timestamp", "accepted"])


def _table(rows: list[tuple], names: list[str], tz: set[str] = frozenset()) -> pa.Table:  # type: ignore[assignment]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = []
    for name, values in zip(names, columns, strict=True):
        if name in tz:
            arrays.append(pa.array(values, type=pa.timestamp("us", tz="UTC")))
        elif isinstance(next((v for v in values if v is not None), None), datetime):
            arrays.append(pa.array(values, type=pa.timestamp("us")))
        else:
            arrays.append(pa.array(values))
    return pa.table(dict(zip(names, arrays, strict=True)))
