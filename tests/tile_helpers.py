"""An aggregate view over a parquet file of trips, built in Python, and a Python oracle of the window contract.

The oracle is DESIGN.md's "Windowed aggregates" read literally: the rows of key k that pass
the filter with `as_of - w <= e < as_of`, `as_of = floor(min(t, T), g)`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from fsql.durations import Duration
from fsql.engines.duckdb import DuckDBEngine
from fsql.online.materialize import MaterializeRequest, MaterializeResult, materialize_view
from fsql.online.materialize_tiles import floor_to
from fsql.spec import (
    AggregateFunction,
    AggregateWindow,
    Aggregation,
    Column,
    Definitions,
    Entity,
    Feature,
    FeatureView,
    Source,
    SourceKind,
)

F = AggregateFunction
HOUR = Duration(1, "h")
DAY = Duration(1, "d")
COMPLETED = "status = 'completed'"
_TYPES = {
    F.COUNT: exp.DType.BIGINT,
    F.COUNT_DISTINCT: exp.DType.BIGINT,
    F.AVG: exp.DType.DOUBLE,
    F.STDDEV: exp.DType.DOUBLE,
}


@dataclass(frozen=True)
class Trip:
    driver_id: int | None
    event_ts: datetime | None
    status: str = "completed"
    fare: float | None = 10.0
    created_ts: datetime | None = None


def aggregation(name: str, function: F, expression: str | None, windows: tuple[Duration, ...], *,
                filter: str | None = None, input_type: exp.DType | None = exp.DType.DOUBLE) -> Aggregation:  # fmt: skip
    return Aggregation(name, function, expression, filter, windows, None if expression is None else input_type)


AGGREGATIONS = (
    aggregation("trips", F.COUNT, None, (HOUR, DAY, Duration(7, "d")), filter=COMPLETED),
    aggregation("spend", F.SUM, "fare", (DAY, Duration(7, "d")), filter=COMPLETED),
    aggregation("fare_avg", F.AVG, "fare", (DAY,)),
    aggregation("fare_max", F.MAX, "fare", (DAY,)),
    aggregation("fare_min", F.MIN, "fare", (HOUR,)),
    aggregation("fare_sd", F.STDDEV, "fare", (DAY,)),
    aggregation("last_fare", F.LAST, "fare", (DAY,)),
    aggregation("requests", F.COUNT, None, (HOUR,)),
    aggregation("fares", F.COUNT_DISTINCT, "fare", (HOUR, DAY), filter=COMPLETED),
    aggregation("statuses", F.COUNT_DISTINCT, "status", (DAY,), input_type=exp.DType.TEXT),
)


def definitions(
    aggregations: tuple[Aggregation, ...] = AGGREGATIONS, *, granularity: Duration = HOUR, created: bool = True
) -> Definitions:
    key = Column("driver_id", exp.DType.BIGINT)
    columns = (
        key,
        Column("event_ts", exp.DType.TIMESTAMP),
        Column("created_ts", exp.DType.TIMESTAMP),
        Column("status", exp.DType.TEXT),
        Column("fare", exp.DType.DOUBLE),
    )
    source = Source(
        "trips", SourceKind.FILE, "data/trips.parquet", "event_ts", "created_ts" if created else None, columns
    )
    features = tuple(
        Feature(a.feature_name(w), _TYPES.get(a.function, exp.DType.DOUBLE), "", aggregate=AggregateWindow(a, w))
        for a in aggregations
        for w in a.windows
    )
    view = FeatureView(
        "driver_trips", ("driver",), (key,), "trips", None, features, online=True, aggregations=aggregations,
        granularity=granularity,
    )  # fmt: skip
    return Definitions("duckdb", {"driver": Entity("driver", (key,))}, {"trips": source}, {view.name: view}, {})


def write_trips(root: Path, trips: list[Trip]) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    naive = [None if t is None else t.astimezone(UTC).replace(tzinfo=None) for t in (x.event_ts for x in trips)]
    created = [None if t is None else t.astimezone(UTC).replace(tzinfo=None) for t in (x.created_ts for x in trips)]
    table = pa.table(
        {
            "driver_id": pa.array([t.driver_id for t in trips], pa.int64()),
            "event_ts": pa.array(naive, pa.timestamp("us")),
            "created_ts": pa.array(created, pa.timestamp("us")),
            "status": pa.array([t.status for t in trips], pa.string()),
            "fare": pa.array([t.fare for t in trips], pa.float64()),
        }
    )
    pq.write_table(table, root / "data" / "trips.parquet")


def materialize(
    root: Path, defs: Definitions, dsn: str, schema: str, end: datetime, **options: Any
) -> MaterializeResult:
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = DuckDBEngine("duckdb:///:memory:", root=root)
    hooks = {k: options.pop(k) for k in ("before_commit", "after_load") if k in options}
    request = MaterializeRequest(defs, "driver_trips", url, schema, end, **options)
    try:
        return materialize_view(request, engine, file_root=root, **hooks)
    finally:
        engine.connection.close()


def expected(trips: list[Trip], agg: Aggregation, window: Duration, driver: int, as_of: datetime | None) -> Any:
    """The contract's value of one window at `as_of` (None before any build)."""
    if as_of is None:
        return None
    start = as_of - timedelta(seconds=window.seconds)
    rows = [
        t
        for t in trips
        if t.driver_id == driver
        and t.event_ts is not None
        and start <= t.event_ts < as_of
        and (agg.filter is None or t.status == "completed")
    ]
    values = [v for v in (getattr(t, agg.expression or "fare") for t in rows) if v is not None]
    function = agg.function
    if function is F.COUNT:
        return len(rows) if agg.expression is None else len(values)
    if function is F.COUNT_DISTINCT:
        return len(set(values))
    if function is F.LAST:
        if not rows:
            return None
        return max(rows, key=lambda t: (t.event_ts, t.created_ts or datetime.min.replace(tzinfo=UTC))).fare
    if not values:
        return None
    if function is F.SUM:
        return sum(values)
    if function is F.AVG:
        return statistics.fmean(values)
    if function is F.MIN:
        return min(values)
    if function is F.MAX:
        return max(values)
    if function is F.STDDEV:
        return statistics.stdev(values) if len(values) >= 2 else None
    raise AssertionError(function)


def as_of(t: datetime, watermark: datetime, granularity: Duration) -> datetime:
    return floor_to(min(t, watermark), granularity.seconds)


def answered_at(t: datetime, watermark: datetime, granularity: Duration) -> datetime | None:
    """The spine time whose values a lookup at t returns, or None (all NULL) before the kept
    tiles: a build keeps the longest window's tiles before floor(T, g), no older ones."""
    return as_of(t, watermark, granularity) if t >= floor_to(watermark, granularity.seconds) else None


def expected_row(trips: list[Trip], defs: Definitions, driver: int, when: datetime | None) -> dict[str, Any]:
    view = defs.feature_views["driver_trips"]
    row: dict[str, Any] = {"driver_id": driver}
    for a in view.aggregations:
        for w in a.windows:
            row[a.feature_name(w)] = expected(trips, a, w, driver, when)
    return row


def close(a: dict[str, Any], b: dict[str, Any], tolerance: float = 1e-9) -> bool:
    """Equal, with floats within a relative tolerance (sums of doubles depend on their order)."""
    if a.keys() != b.keys():
        return False
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > tolerance * max(1.0, abs(x), abs(y)):
                return False
        elif x != y:
            return False
    return True
