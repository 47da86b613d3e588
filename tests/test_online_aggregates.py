"""Aggregate views online: tiles in Postgres, lookups at as_of = floor(min(t, T), g), no row counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tile_helpers import (
    AGGREGATIONS,
    DAY,
    HOUR,
    Trip,
    answered_at,
    close,
    definitions,
    expected_row,
    materialize,
    write_trips,
)

from fsql.online.lookup import OnlineStore

T = datetime(2024, 3, 20, 12, 30, tzinfo=UTC)  # off a tile boundary
START = datetime(2024, 3, 17, tzinfo=UTC)


def _trips(*, ties: bool = True) -> list[Trip]:
    """Four drivers over three days, with rows on bucket and window edges, NULLs, ties and a cancellation."""
    trips = []
    for i in range(300):
        moment = START + timedelta(minutes=17 * i + (i % 7))
        driver = 1 + i % 4
        fare = None if i % 23 == 0 else round(5 + (i * 37 % 41) / 3, 2)
        status = "cancelled" if i % 5 == 0 else "completed"
        trips.append(Trip(driver, moment, status, fare, moment + timedelta(minutes=1)))
    edge = datetime(2024, 3, 20, 11, tzinfo=UTC)
    trips += [
        Trip(1, edge, "completed", 100.0),  # exactly on a bucket start: in it
        Trip(1, edge - timedelta(microseconds=1), "completed", 1.0),  # the microsecond before: the bucket before
        Trip(2, T, "completed", 7.0),  # at T: not read before the next run (e < T)
        Trip(None, edge, "completed", 9.0),  # a NULL key never matches
        Trip(3, None, "completed", 9.0),  # nor a NULL time
        Trip(4, edge + timedelta(minutes=5), "completed", None),  # the last fare may be NULL
    ]
    if ties:  # a tie on e: the greater created time is the last (without a created time, either is)
        trips += [Trip(5, edge, "completed", 3.0, edge), Trip(5, edge, "completed", 4.0, edge + timedelta(seconds=1))]
    return trips


def _online(dsn: str, schema: str, defs: Any, drivers: list[int], now: datetime) -> list[dict[str, Any]]:
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    with OnlineStore(url, schema=schema, definitions=defs) as store:
        return store.get_online_features([{"driver_id": d} for d in drivers], features=["driver_trips"], now=now)


def _tiles(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(f'SELECT * FROM "{schema}"."driver_trips" ORDER BY 1, 2').fetchall()


def _state(dsn: str, schema: str) -> tuple[Any, ...]:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            f'SELECT watermark, late_rows FROM "{schema}"."_fsql_state" WHERE view = %s', ("driver_trips",)
        ).fetchone()
    assert row is not None
    return tuple(row)


def _lookup_times() -> list[datetime]:
    """Before, at and after T; on and off tile boundaries."""
    on_boundary = datetime(2024, 3, 20, 10, tzinfo=UTC)
    return [on_boundary, on_boundary + timedelta(microseconds=1), T - timedelta(hours=5, minutes=3), T,
            T + timedelta(minutes=45), T + timedelta(days=2)]  # fmt: skip


def _assert_online_is_the_contract(
    dsn: str, schema: str, defs: Any, trips: list[Trip], watermark: datetime, times: list[datetime] | None = None
) -> None:
    drivers = [1, 2, 3, 4, 5, 99]
    for t in times or _lookup_times():
        got = _online(dsn, schema, defs, drivers, t)
        want = [expected_row(trips, defs, d, answered_at(t, watermark, HOUR)) for d in drivers]
        for g, w in zip(got, want, strict=True):
            assert close(g, w), (t, {k: (g[k], w.get(k)) for k in g if g[k] != w.get(k)})


def test_lookups_equal_the_contract_at_as_of(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    done = materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    assert done.watermark == T and done.rows_written > 0
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)
    values = _online(postgres_dsn, postgres_schema, defs, [5, 99], T)
    assert values[1]["trips_7d"] == 0 and values[1]["spend_1d"] is None  # no tiles: count 0, the rest NULL
    assert values[0]["last_fare_1d"] == 4.0  # the tie on event time goes to the later created time


def test_lookup_before_any_build_is_null(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute(f'DELETE FROM "{postgres_schema}"."_fsql_state"')
    assert _online(postgres_dsn, postgres_schema, defs, [1], T)[0]["trips_7d"] is None


def test_the_watermark_is_min_of_end_and_now(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    ahead = datetime.now(UTC) + timedelta(days=3)
    done = materialize(tmp_path, defs, postgres_dsn, postgres_schema, ahead)
    assert done.watermark is not None and done.watermark < ahead and done.watermark > T


def test_replayed_and_overlapping_builds_count_each_row_once(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    once = T - timedelta(days=1, minutes=10)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, once)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    stepped = _tiles(postgres_dsn, postgres_schema)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)  # the same build again
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, once)  # an older end: nothing taken back
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T, start=once - timedelta(hours=7))  # overlapping
    assert _strip(_tiles(postgres_dsn, postgres_schema)) == _strip(stepped)
    assert _state(postgres_dsn, postgres_schema)[0] == T
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T, full_refresh=True)
    assert _strip(_tiles(postgres_dsn, postgres_schema)) == _strip(stepped)


def test_incremental_builds_equal_one_build(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    for hours in (60, 37, 20, 3, 1):
        materialize(tmp_path, defs, postgres_dsn, postgres_schema, T - timedelta(hours=hours, minutes=hours))
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    stepped = _strip(_tiles(postgres_dsn, postgres_schema))
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T, full_refresh=True)
    assert stepped == _strip(_tiles(postgres_dsn, postgres_schema))


def test_a_late_row_is_counted_once(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(ties=False), definitions(created=False)
    write_trips(tmp_path, trips)
    first = T - timedelta(hours=2)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, first)
    late = Trip(1, first - timedelta(hours=3, minutes=1), "completed", 50.0)  # behind the watermark
    trips = [*trips, late]
    write_trips(tmp_path, trips)
    done = materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    assert done.late_rows == 1 and done.warnings
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)
    again = materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    assert again.late_rows == 0
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)


def test_a_row_within_lateness_needs_no_full_reread(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(ties=False), definitions(created=False)
    write_trips(tmp_path, trips)
    first = T - timedelta(hours=2)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, first, lateness=timedelta(hours=1))
    trips = [*trips, Trip(3, first - timedelta(minutes=50), "completed", 20.0)]
    write_trips(tmp_path, trips)
    done = materialize(tmp_path, defs, postgres_dsn, postgres_schema, T, lateness=timedelta(hours=1))
    assert done.late_rows == 0 and done.start == first - timedelta(hours=1)
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)


def test_a_correction_recomputes_its_old_bucket(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    first = T - timedelta(hours=2)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, first)
    old = first - timedelta(hours=9)
    trips = [*trips, Trip(2, old, "completed", 12.5, first + timedelta(minutes=1))]  # an old event, created now
    write_trips(tmp_path, trips)
    done = materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    assert done.late_rows == 0
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)


def test_tiles_past_the_longest_window_are_removed(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    later = T + timedelta(days=5)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, later)
    buckets = [row[1] for row in _tiles(postgres_dsn, postgres_schema)]
    horizon = datetime(2024, 3, 25, 12, tzinfo=UTC) - timedelta(days=7)
    assert buckets and min(buckets) >= horizon > START  # the data's first buckets were older
    # Lookups at or after T: before it, a window may reach past the tiles kept (see the README).
    times = [later, later + timedelta(minutes=1), later + timedelta(days=1)]
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, later, times)


def test_a_build_killed_before_commit_leaves_the_old_tiles(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    first = T - timedelta(hours=6)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, first)
    before = _tiles(postgres_dsn, postgres_schema)
    marker = tmp_path / "loaded"
    script = textwrap.dedent(
        f"""
        import sys, time, pathlib
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from datetime import datetime
        from tile_helpers import definitions, materialize
        def hold():
            pathlib.Path({str(marker)!r}).write_text("in")
            while True:
                time.sleep(1)
        materialize(pathlib.Path({str(tmp_path)!r}), definitions(), {postgres_dsn!r}, {postgres_schema!r},
                    datetime.fromisoformat({T.isoformat()!r}), before_commit=hold)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    while not marker.exists():  # the child has written its tiles and state, uncommitted
        assert child.poll() is None, "the build ended before it reached the commit"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _tiles(postgres_dsn, postgres_schema) == before
    assert _state(postgres_dsn, postgres_schema)[0] == first
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)


def test_daily_tiles_snap_both_ends_to_utc_days(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    from tile_helpers import AGGREGATIONS

    trips = _trips()
    defs = definitions(AGGREGATIONS[1:2], granularity=DAY)  # spend over 1d and 7d
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    for t in _lookup_times():
        got = _online(postgres_dsn, postgres_schema, defs, [1, 2], t)
        want = [expected_row(trips, defs, d, answered_at(t, T, DAY)) for d in (1, 2)]
        assert all(close(g, w) for g, w in zip(got, want, strict=True)), (t, got, want)


def _strip(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Tiles without materialized_at (the last column)."""
    return [row[:-1] for row in rows]


def test_count_distinct_tiles_keep_awkward_values_apart(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    # The tiles keep each bucket's distinct values as a Postgres array written through COPY:
    # quotes, backslashes, commas, braces, blanks and the text 'NULL' must stay themselves.
    awkward = ['a"b', "c\\d", "e,f", "{g}", "", "NULL", "ü", " spaced ", 'a"b', "c\\d"]
    hour = datetime(2024, 3, 20, 9, tzinfo=UTC)
    trips = [Trip(1, hour + timedelta(minutes=7 * i), status) for i, status in enumerate(awkward)]
    trips += [Trip(1, hour - timedelta(hours=3), "completed"), Trip(1, hour - timedelta(hours=2), "e,f")]
    trips += [Trip(2, hour, None), Trip(2, hour + timedelta(minutes=1), "x")]  # a NULL value is not counted
    defs = definitions()
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    values = _online(postgres_dsn, postgres_schema, defs, [1, 2], T)
    assert values[0]["statuses_1d"] == len(set(awkward)) + 1 == 9  # 'completed', and 'e,f' in two tiles once
    assert values[1]["statuses_1d"] == 1
    assert [v["statuses_1d"] for v in values] == [
        expected_row(trips, defs, d, T - timedelta(minutes=30))["statuses_1d"] for d in (1, 2)
    ]


def test_each_entitys_tiles_are_stored_together(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    """A lookup reads one entity's tiles of the longest window: written bucket by bucket, they
    would lie on as many heap pages as there are tiles (720 random reads for 30 days of 1h
    tiles); written in (keys, bucket) order they share a few pages. Both a first build and a
    later incremental one write their tiles in that order."""
    trips, defs = _trips(), definitions()
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T - timedelta(hours=5))
    written = _physical_order(postgres_dsn, postgres_schema)
    assert len(written) > 50 and written == sorted(written)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)  # deletes the touched buckets, adds them back
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute(
            f'SELECT driver_id, bucket_start FROM "{postgres_schema}".driver_trips '
            f'WHERE materialized_at = (SELECT max(materialized_at) FROM "{postgres_schema}".driver_trips) '
            "ORDER BY ctid"
        ).fetchall()
    assert len(rows) > 4 and rows == sorted(rows)


def _physical_order(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            f'SELECT driver_id, bucket_start FROM "{schema}".driver_trips ORDER BY ctid'
        ).fetchall()


@pytest.mark.parametrize(
    "names",
    [
        ("fare_max",),  # one window: every tile in one class
        ("fares", "statuses"),  # only distinct counts: no class merge at all
        ("last_fare", "fare_min", "fares"),  # 1h and 1d, last with its tie-break, a distinct count beside
        ("trips", "fare_sd"),  # classes 1h, 1d, 7d; a stddev of one value
    ],
)
def test_views_with_few_windows_or_functions_equal_the_contract(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, names: tuple[str, ...]
) -> None:
    """The windows are merged from per-class states: these views give the classes their edge cases."""
    trips = _trips()
    defs = definitions(tuple(a for a in AGGREGATIONS if a.name in names))
    write_trips(tmp_path, trips)
    materialize(tmp_path, defs, postgres_dsn, postgres_schema, T)
    _assert_online_is_the_contract(postgres_dsn, postgres_schema, defs, trips, T)
