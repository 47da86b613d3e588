"""One test per point-in-time rule of DESIGN.md ("PIT semantics"), each with hand-computed values.

Every test states the expected features by hand, checks the oracle (tests/pit_reference.py)
agrees with the hand-computed values, and checks the engine against both. The `engine`
fixture runs each test on every engine the harness knows (today: duckdb).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pit_harness import (
    BERLIN,
    ENGINES,
    SPINE_FORMS,
    Entity,
    Feature,
    PitCase,
    PitResult,
    View,
    mismatches,
    normalize,
    run_pit,
    spine_table,
)

import fsql
from fsql.errors import CompileError

T = datetime(2024, 3, 10, 12, 0, 0)  # a naive timestamp: UTC
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
HOUR = timedelta(hours=1)

DRIVER = Entity("driver", (("driver_id", "bigint"),))
RIDER = Entity("rider", (("rider_id", "bigint"),))
ZONE = Entity("zone", (("zone_id", "string"),))
SPINE_TYPES: dict[str, Any] = {"row_id": "bigint", "driver_id": "bigint", "ts": "timestamp"}

Runner = Callable[..., PitResult]


@pytest.fixture(params=sorted(ENGINES))
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """run(case, spine, **request) on the engine of this parametrization, in a fresh project dir."""
    counter = itertools.count()

    def go(case: PitCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        return run_pit(request.param, tmp_path / f"project{next(counter)}", case, spine, **kwargs)

    return go


def stats_view(rows: list[dict[str, Any]], **kwargs: Any) -> View:
    """driver_stats on the driver entity, with one bigint feature `conv`."""
    options: dict[str, Any] = {"columns": {"conv": "bigint"}, "features": (Feature("conv", "bigint"),)}
    options.update(kwargs)
    return View("driver_stats", (DRIVER,), rows=rows, **options)


def check(
    result: PitResult,
    case: PitCase,
    spine: pa.Table,
    expected: Mapping[Hashable, Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> None:
    """The engine gives the hand-computed values, and agrees with the oracle on every row.

    `expected` maps a row id to {output column: value}; the oracle must allow the same
    values (so a wrong oracle is caught here too).
    """
    reference = case.reference(spine.to_pylist(), spine_ts="ts")
    outputs = {
        (f"{v.name}__{f.name}" if full_feature_names else f.name): (v.name, i)
        for v in case.views
        for i, f in enumerate(v.features)
    }
    for rid, columns in expected.items():
        for column, value in columns.items():
            view, index = outputs[column]
            allowed = {normalize(t[index]) for t in reference[rid][view]}
            assert normalize(value) in allowed, f"oracle disagrees on row {rid} {column}: allows {allowed}"
    got = result.by_id()
    assert len(result.rows()) == spine.num_rows
    for rid, columns in expected.items():
        actual = {c: normalize(got[rid][c]) for c in columns}
        assert actual == {c: normalize(v) for c, v in columns.items()}, f"row {rid}\n{result.sql}"
    problems = mismatches(result, case, spine, full_feature_names=full_feature_names)
    assert not problems, "\n".join(problems) + "\n" + result.sql


# --- ttl and the spine timestamp bounds ------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "delta"),
    [
        ("2d", timedelta(days=2)),
        ("90s", timedelta(seconds=90)),
        ("45m", timedelta(minutes=45)),
        ("3h", timedelta(hours=3)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_ttl_boundary_is_inclusive_and_one_second_older_is_expired(run: Runner, ttl: str, delta: timedelta) -> None:
    rows = [
        {"driver_id": 1, "event_ts": T - delta, "conv": 10},  # exactly at ts - ttl: included
        {"driver_id": 2, "event_ts": T - delta - SECOND, "conv": 20},  # one second older: expired
        {"driver_id": 3, "event_ts": T - delta - SECOND, "conv": 30},  # expired, but an in-ttl row
        {"driver_id": 3, "event_ts": T - delta + SECOND, "conv": 31},  # of the same key is newer
    ]
    case = PitCase([stats_view(rows, ttl=ttl)])
    spine = spine_table([{"row_id": i, "driver_id": i, "ts": T} for i in (1, 2, 3)], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 10}, 2: {"conv": None}, 3: {"conv": 31}})


def test_ttl_expiry_does_not_fall_back_to_an_older_row(run: Runner) -> None:
    # The latest row before ts is expired, so is every older one: NULL, whatever the older values.
    rows = [
        {"driver_id": 1, "event_ts": T - timedelta(days=5), "conv": 1},
        {"driver_id": 1, "event_ts": T - timedelta(days=3), "conv": 2},
    ]
    case = PitCase([stats_view(rows, ttl="2d")])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": None}})


def test_event_at_exactly_the_spine_ts_is_included_one_microsecond_later_is_not(run: Runner) -> None:
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "conv": 1},
        {"driver_id": 1, "event_ts": T, "conv": 2},  # at ts: the winner
        {"driver_id": 2, "event_ts": T - HOUR, "conv": 3},
        {"driver_id": 2, "event_ts": T + MICROSECOND, "conv": 4},  # 1 µs after ts: not yet known
    ]
    case = PitCase([stats_view(rows)])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}, {"row_id": 2, "driver_id": 2, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 2}, 2: {"conv": 3}})


def test_spine_earlier_than_all_data_gives_null(run: Runner) -> None:
    rows = [{"driver_id": 1, "event_ts": T + HOUR, "conv": 1}, {"driver_id": 1, "event_ts": T + 2 * HOUR, "conv": 2}]
    case = PitCase([stats_view(rows)])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": None}})


# --- the winner: event time, then created time -----------------------------------------


def test_created_time_breaks_ties_of_equal_event_time(run: Runner) -> None:
    rows = [
        # Same key and event time: the greatest created time wins, whatever the file order.
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR + 2 * SECOND, "conv": 2},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR + 3 * SECOND, "conv": 3},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR + 1 * SECOND, "conv": 1},
        # Event time comes first: a later event with an older created time beats a newer correction
        # of an earlier event.
        {"driver_id": 2, "event_ts": T - 2 * HOUR, "created_ts": T, "conv": 20},
        {"driver_id": 2, "event_ts": T - HOUR, "created_ts": T - 3 * HOUR, "conv": 21},
    ]
    case = PitCase([stats_view(rows, created=True)])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}, {"row_id": 2, "driver_id": 2, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 3}, 2: {"conv": 21}})


def test_created_time_after_the_spine_ts_still_counts(run: Runner) -> None:
    # Only the event time is bounded by the spine ts; a correction created later still wins its tie.
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR, "conv": 1},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T + HOUR, "conv": 2},
    ]
    case = PitCase([stats_view(rows, created=True)])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 2}})


def test_null_created_time_ranks_lowest(run: Runner) -> None:
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": None, "conv": 1},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": datetime(1970, 1, 1), "conv": 2},
        {"driver_id": 2, "event_ts": T - HOUR, "created_ts": T, "conv": 3},
        {"driver_id": 2, "event_ts": T - HOUR, "created_ts": None, "conv": 4},
        # A NULL created time does not lose to an older event: event time still comes first.
        {"driver_id": 3, "event_ts": T - 2 * HOUR, "created_ts": T, "conv": 5},
        {"driver_id": 3, "event_ts": T - HOUR, "created_ts": None, "conv": 6},
    ]
    case = PitCase([stats_view(rows, created=True)])
    spine = spine_table([{"row_id": i, "driver_id": i, "ts": T} for i in (1, 2, 3)], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 2}, 2: {"conv": 3}, 3: {"conv": 6}})


def test_equal_keys_and_event_time_without_created_column_give_one_row(run: Runner) -> None:
    # A complete tie: either row may win, but one output row, with both features from the same row.
    features = (Feature("a", "bigint"), Feature("b", "string"))
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "a": 1, "b": "first"},
        {"driver_id": 1, "event_ts": T - HOUR, "a": 2, "b": "second"},
        {"driver_id": 1, "event_ts": T - 2 * HOUR, "a": 0, "b": "older"},
    ]
    view = stats_view(rows, columns={"a": "bigint", "b": "string"}, features=features)
    case = PitCase([view])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    result = run(case, spine)
    assert len(result.rows()) == 1
    row = result.by_id()[1]
    assert (row["a"], row["b"]) in {(1, "first"), (2, "second")}, result.sql
    assert not mismatches(result, case, spine)


def test_equal_keys_event_and_created_time_give_one_row(run: Runner) -> None:
    features = (Feature("a", "bigint"), Feature("b", "string"))
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR, "a": 1, "b": "first"},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR, "a": 2, "b": "second"},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - 2 * HOUR, "a": 0, "b": "older correction"},
    ]
    view = stats_view(rows, columns={"a": "bigint", "b": "string"}, features=features, created=True)
    case = PitCase([view])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    result = run(case, spine)
    assert len(result.rows()) == 1
    row = result.by_id()[1]
    assert (row["a"], row["b"]) in {(1, "first"), (2, "second")}, result.sql
    assert not mismatches(result, case, spine)


def test_null_value_in_latest_row_stays_null(run: Runner) -> None:
    features = (Feature("conv", "bigint"), Feature("label", "string"))
    rows = [
        {"driver_id": 1, "event_ts": T - 2 * HOUR, "conv": 5, "label": "older"},
        {"driver_id": 1, "event_ts": T - HOUR, "conv": None, "label": "latest"},
    ]
    case = PitCase([stats_view(rows, columns={"conv": "bigint", "label": "string"}, features=features)])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": None, "label": "latest"}})


# --- join keys ---------------------------------------------------------------------------


def _pair_view(rows: list[dict[str, Any]]) -> View:
    """A view keyed by (a bigint, b string): keys that would collide if concatenated."""
    entities = (Entity("a", (("a_id", "bigint"),)), Entity("b", (("b_id", "string"),)))
    return View("pairs", entities, {"v": "string"}, (Feature("v", "string"),), rows)


def test_keys_do_not_collide_when_concatenated(run: Runner) -> None:
    rows = [
        {"a_id": 1, "b_id": "23", "event_ts": T - HOUR, "v": "1|23"},
        {"a_id": 12, "b_id": "3", "event_ts": T - 2 * HOUR, "v": "12|3"},
    ]
    case = PitCase([_pair_view(rows)])
    spine_rows = [
        {"row_id": 1, "a_id": 1, "b_id": "23", "ts": T},
        {"row_id": 2, "a_id": 12, "b_id": "3", "ts": T},
        {"row_id": 3, "a_id": 1, "b_id": "3", "ts": T},
        {"row_id": 4, "a_id": 12, "b_id": "23", "ts": T},
        {"row_id": 5, "a_id": 123, "b_id": "", "ts": T},
    ]
    spine = spine_table(spine_rows, {"row_id": "bigint", "a_id": "bigint", "b_id": "string", "ts": "timestamp"})
    expected = {1: {"v": "1|23"}, 2: {"v": "12|3"}, 3: {"v": None}, 4: {"v": None}, 5: {"v": None}}
    check(run(case, spine), case, spine, expected)


def test_null_join_keys_never_match(run: Runner) -> None:
    # Feature rows with a NULL key are newer than the real ones: they must match nothing, not
    # even a spine row whose key is NULL too.
    rows = [
        {"a_id": 1, "b_id": "x", "event_ts": T - 2 * HOUR, "v": "1|x"},
        {"a_id": None, "b_id": "x", "event_ts": T - HOUR, "v": "NULL|x"},
        {"a_id": 1, "b_id": None, "event_ts": T - HOUR, "v": "1|NULL"},
        {"a_id": None, "b_id": None, "event_ts": T - HOUR, "v": "NULL|NULL"},
    ]
    case = PitCase([_pair_view(rows)])
    spine_rows = [
        {"row_id": 1, "a_id": 1, "b_id": "x", "ts": T},
        {"row_id": 2, "a_id": None, "b_id": "x", "ts": T},
        {"row_id": 3, "a_id": 1, "b_id": None, "ts": T},
        {"row_id": 4, "a_id": None, "b_id": None, "ts": T},
    ]
    spine = spine_table(spine_rows, {"row_id": "bigint", "a_id": "bigint", "b_id": "string", "ts": "timestamp"})
    expected = {1: {"v": "1|x"}, 2: {"v": None}, 3: {"v": None}, 4: {"v": None}}
    check(run(case, spine), case, spine, expected)


def test_null_spine_timestamp_gives_null(run: Runner) -> None:
    # r.e <= NULL is never true: a spine row without a timestamp has no candidate, with or
    # without a created column (and no ttl to hide it).
    plain = stats_view([{"driver_id": 1, "event_ts": T - HOUR, "conv": 1}])
    corrected = View(
        "driver_corrected",
        (DRIVER,),
        {"conv2": "bigint"},
        (Feature("conv2", "bigint"),),
        [{"driver_id": 1, "event_ts": T - HOUR, "created_ts": T - HOUR, "conv2": 2}],
        created=True,
    )
    case = PitCase([plain, corrected])
    spine = spine_table(
        [{"row_id": 1, "driver_id": 1, "ts": None}, {"row_id": 2, "driver_id": 1, "ts": T}], SPINE_TYPES
    )
    check(run(case, spine), case, spine, {1: {"conv": None, "conv2": None}, 2: {"conv": 1, "conv2": 2}})


# --- time zones ----------------------------------------------------------------------------


def test_berlin_spine_timestamp_against_naive_utc_feature_times(run: Runner) -> None:
    # 2024-03-31 03:30 in Berlin (CEST, +02:00, the night clocks moved) is 01:30 UTC.
    day = datetime(2024, 3, 31)
    rows = [
        {"driver_id": 1, "event_ts": day.replace(hour=1), "conv": 1},  # 01:00 UTC
        {"driver_id": 1, "event_ts": day.replace(hour=2), "conv": 2},  # 02:00 UTC
        {"driver_id": 1, "event_ts": day.replace(hour=3), "conv": 3},  # 03:00 UTC
    ]
    case = PitCase([stats_view(rows, ttl="1h")])
    berlin = ZoneInfo(BERLIN)
    spine_rows = [
        {"row_id": 1, "driver_id": 1, "ts": datetime(2024, 3, 31, 3, 30, tzinfo=berlin)},  # 01:30 UTC
        {"row_id": 2, "driver_id": 1, "ts": datetime(2024, 3, 31, 4, 0, tzinfo=berlin)},  # 02:00 UTC
        {"row_id": 3, "driver_id": 1, "ts": datetime(2024, 3, 31, 1, 59, tzinfo=berlin)},  # 00:59 UTC
        {"row_id": 4, "driver_id": 1, "ts": datetime(2024, 3, 31, 5, 0, 1, tzinfo=berlin)},  # 03:00:01 UTC
    ]
    types = {"row_id": "bigint", "driver_id": "bigint", "ts": pa.timestamp("us", tz=BERLIN)}
    spine = spine_table(spine_rows, types)
    expected = {1: {"conv": 1}, 2: {"conv": 2}, 3: {"conv": None}, 4: {"conv": 3}}
    check(run(case, spine), case, spine, expected)


def test_ttl_in_days_is_24_hours_across_a_dst_change(run: Runner) -> None:
    # Berlin's 2024-03-31 had 23 hours. ts - 1d is 24 hours earlier as an instant (compared in
    # UTC), not the same wall-clock time a calendar day earlier in Berlin (which is 23 h).
    berlin = ZoneInfo(BERLIN)
    rows = [
        {"driver_id": 1, "event_ts": datetime(2024, 3, 30, 10, 0, 0), "conv": 1},  # exactly 24 h before
        {"driver_id": 2, "event_ts": datetime(2024, 3, 30, 9, 59, 59), "conv": 2},  # 24 h and 1 s before
    ]
    case = PitCase([stats_view(rows, ttl="1d")])
    ts = datetime(2024, 3, 31, 12, 0, tzinfo=berlin)  # 10:00 UTC
    spine_rows = [{"row_id": i, "driver_id": i, "ts": ts} for i in (1, 2)]
    spine = spine_table(spine_rows, {"row_id": "bigint", "driver_id": "bigint", "ts": pa.timestamp("us", tz=BERLIN)})
    check(run(case, spine), case, spine, {1: {"conv": 1}, 2: {"conv": None}})


def test_berlin_feature_times_against_naive_utc_spine(run: Runner) -> None:
    berlin = ZoneInfo(BERLIN)
    rows = [
        {"driver_id": 1, "event_ts": datetime(2024, 1, 15, 12, 0, tzinfo=berlin), "conv": 1},  # 11:00 UTC
        {"driver_id": 1, "event_ts": datetime(2024, 1, 15, 13, 0, tzinfo=berlin), "conv": 2},  # 12:00 UTC
    ]
    view = stats_view(rows, event_type="timestamptz", arrow_types={"event_ts": pa.timestamp("us", tz=BERLIN)})
    case = PitCase([view])
    spine_rows = [
        {"row_id": 1, "driver_id": 1, "ts": datetime(2024, 1, 15, 11, 59, 59)},
        {"row_id": 2, "driver_id": 1, "ts": datetime(2024, 1, 15, 12, 0)},
        {"row_id": 3, "driver_id": 1, "ts": datetime(2024, 1, 15, 10, 59, 59)},
    ]
    spine = spine_table(spine_rows, SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 1}, 2: {"conv": 2}, 3: {"conv": None}})


def test_berlin_created_times_break_ties_as_instants(run: Runner) -> None:
    # 12:30 in Berlin (11:30 UTC) is earlier than 12:00 UTC, though its wall clock is later.
    berlin = ZoneInfo(BERLIN)
    rows = [
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": datetime(2024, 3, 10, 12, 30, tzinfo=berlin), "conv": 1},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": datetime(2024, 3, 10, 12, 0, tzinfo=UTC), "conv": 2},
    ]
    view = stats_view(
        rows, created=True, created_type="timestamptz", arrow_types={"created_ts": pa.timestamp("us", tz=BERLIN)}
    )
    case = PitCase([view])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    check(run(case, spine), case, spine, {1: {"conv": 2}})


# --- spine rows and columns ---------------------------------------------------------------


def test_same_spine_row_twice_gives_two_identical_rows(run: Runner) -> None:
    rows = [{"driver_id": 1, "event_ts": T - HOUR, "conv": 7}]
    case = PitCase([stats_view(rows)])
    twice = {"row_id": 1, "driver_id": 1, "ts": T}
    spine = spine_table([twice, twice, {"row_id": 2, "driver_id": 1, "ts": T - 2 * HOUR}], SPINE_TYPES)
    result = run(case, spine)
    got = sorted(result.rows(), key=lambda r: (r["row_id"], r["conv"] is None))
    assert got == [
        {"row_id": 1, "driver_id": 1, "ts": T, "conv": 7},
        {"row_id": 1, "driver_id": 1, "ts": T, "conv": 7},
        {"row_id": 2, "driver_id": 1, "ts": T - 2 * HOUR, "conv": None},
    ], result.sql


def test_spine_label_columns_pass_through_unchanged(run: Runner) -> None:
    rows = [{"driver_id": 1, "event_ts": T - HOUR, "conv": 7}]
    case = PitCase([stats_view(rows)])
    berlin = ZoneInfo(BERLIN)
    types = {
        "row_id": "bigint",
        "driver_id": "bigint",
        "ts": "timestamp",
        "label": "bool",
        "weight": "double",
        "note": "string",
        "small": pa.int32(),
        "day": "date",
        "seen_at": "timestamp",
        "seen_berlin": pa.timestamp("us", tz=BERLIN),
    }
    spine_rows = [
        {
            "row_id": 1,
            "driver_id": 1,
            "ts": T,
            "label": True,
            "weight": 0.1,
            "note": "héllo, 'quoted'",
            "small": -3,
            "day": T.date(),
            "seen_at": T - MICROSECOND,
            "seen_berlin": datetime(2024, 3, 31, 3, 30, tzinfo=berlin),
        },
        {"row_id": 2, "driver_id": 2, "ts": T, "label": None, "weight": None, "note": None, "small": None},
    ]
    spine = spine_table(spine_rows, types)
    result = run(case, spine)
    assert result.table.column_names == [*spine.column_names, "conv"]
    for name in spine.column_names:
        got, given = result.table.schema.field(name).type, spine.schema.field(name).type
        if pa.types.is_timestamp(given) and given.tz is not None:
            # An instant column: same unit, values equal as instants (DuckDB hands it back in UTC).
            assert pa.types.is_timestamp(got) and got.unit == given.unit and got.tz is not None, (name, got)
        else:
            assert got == given, (name, got, given)
    by_id = result.by_id()
    for given_row in spine.to_pylist():
        out = by_id[given_row["row_id"]]
        assert {k: out[k] for k in given_row} == given_row  # tz-aware datetimes compare as instants
    assert by_id[1]["conv"] == 7
    assert by_id[2]["conv"] is None


@pytest.mark.parametrize("spine_form", SPINE_FORMS)
def test_spine_forms_give_the_same_result(run: Runner, spine_form: str) -> None:
    # The same spine as a pyarrow Table, a pandas DataFrame, a parquet path and a SQL query.
    rows = [
        {"driver_id": 1, "event_ts": T - 2 * HOUR, "created_ts": T, "conv": 1},
        {"driver_id": 1, "event_ts": T - HOUR, "created_ts": None, "conv": 2},
        {"driver_id": 2, "event_ts": T - HOUR, "created_ts": T - HOUR, "conv": 3},
        {"driver_id": 2, "event_ts": T - HOUR, "created_ts": T, "conv": 4},
    ]
    case = PitCase([stats_view(rows, created=True, ttl="90m")])
    spine_rows = [
        {"row_id": 1, "driver_id": 1, "ts": T, "y": 1.5},
        {"row_id": 2, "driver_id": 1, "ts": T - 90 * timedelta(minutes=1), "y": 0.0},
        {"row_id": 3, "driver_id": 2, "ts": T, "y": -1.0},
        {"row_id": 4, "driver_id": 2, "ts": T + 31 * timedelta(minutes=1), "y": 2.0},
        {"row_id": 5, "driver_id": 3, "ts": T, "y": 3.0},
    ]
    spine = spine_table(spine_rows, {**SPINE_TYPES, "y": "double"})
    result = run(case, spine, spine_form=spine_form)
    expected = {1: {"conv": 2}, 2: {"conv": 1}, 3: {"conv": 4}, 4: {"conv": None}, 5: {"conv": None}}
    check(result, case, spine, expected)
    got = {r["row_id"]: (r["driver_id"], normalize(r["ts"]), r["y"], r["conv"]) for r in result.rows()}
    assert got == {
        r["row_id"]: (r["driver_id"], normalize(r["ts"]), r["y"], next(iter(expected[r["row_id"]].values())))
        for r in spine_rows
    }


# --- several views, keys and entities in one request ------------------------------------------


def test_several_views_and_several_join_keys_in_one_query(run: Runner) -> None:
    driver = stats_view(
        [
            {"driver_id": 1, "event_ts": T - 3 * HOUR, "conv": 10},
            {"driver_id": 1, "event_ts": T - HOUR, "conv": 11},
            {"driver_id": 2, "event_ts": T - 2 * HOUR, "conv": 20},
        ],
        ttl="2h",
    )
    pair = View(
        "rider_driver",
        (RIDER, DRIVER),
        {"trips": "bigint"},
        (Feature("trips", "bigint"),),
        [
            {"rider_id": 7, "driver_id": 1, "event_ts": T - 5 * HOUR, "created_ts": T, "trips": 1},
            {"rider_id": 7, "driver_id": 1, "event_ts": T - 30 * timedelta(minutes=1), "created_ts": None, "trips": 2},
            {"rider_id": 7, "driver_id": 2, "event_ts": T - 4 * HOUR, "created_ts": None, "trips": 5},
            {"rider_id": 8, "driver_id": 1, "event_ts": T - 4 * HOUR, "created_ts": None, "trips": 9},
        ],
        created=True,
    )
    case = PitCase([driver, pair])
    spine_rows = [
        {"row_id": 1, "rider_id": 7, "driver_id": 1, "ts": T},
        {"row_id": 2, "rider_id": 7, "driver_id": 1, "ts": T - HOUR},
        {"row_id": 3, "rider_id": 7, "driver_id": 2, "ts": T},
        {"row_id": 4, "rider_id": 8, "driver_id": 2, "ts": T},
        {"row_id": 5, "rider_id": 8, "driver_id": 1, "ts": T - 5 * HOUR},
    ]
    spine = spine_table(
        spine_rows, {"row_id": "bigint", "rider_id": "bigint", "driver_id": "bigint", "ts": "timestamp"}
    )
    expected = {
        1: {"conv": 11, "trips": 2},
        2: {"conv": 11, "trips": 1},
        3: {"conv": 20, "trips": 5},
        4: {"conv": 20, "trips": None},
        5: {"conv": None, "trips": None},
    }
    check(run(case, spine), case, spine, expected)


def test_views_of_different_entities_in_one_request(run: Runner) -> None:
    driver = stats_view([{"driver_id": 1, "event_ts": T - HOUR, "conv": 10}])
    zone = View(
        "zone_demand",
        (ZONE,),
        {"requests": "bigint", "busy": "bool"},
        (Feature("requests", "bigint"), Feature("busy", "bool")),
        [
            {"zone_id": "z1", "event_ts": T - 10 * timedelta(minutes=1), "requests": 3, "busy": False},
            {"zone_id": "z1", "event_ts": T - 5 * timedelta(minutes=1), "requests": 8, "busy": True},
            {"zone_id": "z2", "event_ts": T - 5 * timedelta(minutes=1), "requests": 1, "busy": False},
        ],
        ttl="15m",
    )
    case = PitCase([driver, zone])
    spine_rows = [
        {"row_id": 1, "driver_id": 1, "zone_id": "z1", "ts": T},
        {"row_id": 2, "driver_id": 2, "zone_id": "z2", "ts": T},
        {"row_id": 3, "driver_id": 1, "zone_id": "z1", "ts": T - 7 * timedelta(minutes=1)},
        {"row_id": 4, "driver_id": 1, "zone_id": "z1", "ts": T + 16 * timedelta(minutes=1)},
    ]
    spine = spine_table(spine_rows, {"row_id": "bigint", "driver_id": "bigint", "zone_id": "string", "ts": "timestamp"})
    expected = {
        1: {"conv": 10, "requests": 8, "busy": True},
        2: {"conv": None, "requests": 1, "busy": False},
        3: {"conv": 10, "requests": 3, "busy": False},
        4: {"conv": 10, "requests": None, "busy": None},
    }
    check(run(case, spine), case, spine, expected)


def _two_views_with_the_same_feature_name() -> PitCase:
    a = View(
        "view_a",
        (DRIVER,),
        {"rate": "double"},
        (Feature("rate", "double"),),
        [
            {"driver_id": 1, "event_ts": T - HOUR, "rate": 0.25},
        ],
    )
    b = View(
        "view_b",
        (DRIVER,),
        {"rate": "double"},
        (Feature("rate", "double"),),
        [
            {"driver_id": 1, "event_ts": T - 2 * HOUR, "rate": 0.75},
            {"driver_id": 1, "event_ts": T + HOUR, "rate": 1.0},
        ],
    )
    return PitCase([a, b], services={"both": ["view_a", "view_b:rate"]})


def test_full_feature_names(run: Runner) -> None:
    case = _two_views_with_the_same_feature_name()
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    result = run(case, spine, full_feature_names=True)
    assert result.table.column_names == ["row_id", "driver_id", "ts", "view_a__rate", "view_b__rate"]
    check(result, case, spine, {1: {"view_a__rate": 0.25, "view_b__rate": 0.75}}, full_feature_names=True)
    by_service = run(case, spine, service="both", full_feature_names=True)
    check(by_service, case, spine, {1: {"view_a__rate": 0.25, "view_b__rate": 0.75}}, full_feature_names=True)


def test_same_feature_name_in_two_views_needs_full_feature_names(run: Runner) -> None:
    case = _two_views_with_the_same_feature_name()
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    with pytest.raises(CompileError, match="full_feature_names"):
        run(case, spine)


def test_feature_expression_is_evaluated_on_the_winning_row(run: Runner) -> None:
    features = (
        Feature("conv", "double"),
        Feature("conv_x2", "double", expr="conv * 2"),
        Feature("gap", "bigint", expr="accepted - offered"),
        Feature("busy", "bool", expr="offered >= 10"),
    )
    rows = [
        {"driver_id": 1, "event_ts": T - 2 * HOUR, "conv": 0.5, "offered": 20, "accepted": 5},
        {"driver_id": 1, "event_ts": T - HOUR, "conv": 0.25, "offered": 4, "accepted": 1},
        {"driver_id": 1, "event_ts": T + HOUR, "conv": 1.0, "offered": 50, "accepted": 50},
        {"driver_id": 2, "event_ts": T - HOUR, "conv": None, "offered": 12, "accepted": None},
    ]
    view = stats_view(
        rows,
        columns={"conv": "double", "offered": "bigint", "accepted": "bigint"},
        features=features,
        ttl="90m",
        reference_exprs={
            "conv_x2": lambda r: None if r["conv"] is None else r["conv"] * 2,
            "gap": lambda r: None if r["accepted"] is None else r["accepted"] - r["offered"],
            "busy": lambda r: r["offered"] >= 10,
        },
    )
    case = PitCase([view])
    spine_rows = [
        {"row_id": 1, "driver_id": 1, "ts": T},
        {"row_id": 2, "driver_id": 1, "ts": T - 90 * timedelta(minutes=1)},
        {"row_id": 3, "driver_id": 2, "ts": T},
        {"row_id": 4, "driver_id": 2, "ts": T + HOUR},
    ]
    spine = spine_table(spine_rows, SPINE_TYPES)
    expected = {
        1: {"conv": 0.25, "conv_x2": 0.5, "gap": -3, "busy": False},
        2: {"conv": 0.5, "conv_x2": 1.0, "gap": -15, "busy": True},
        3: {"conv": None, "conv_x2": None, "gap": None, "busy": True},
        4: {"conv": None, "conv_x2": None, "gap": None, "busy": None},  # expired: all NULL, even `busy`
    }
    check(run(case, spine), case, spine, expected)


def test_harness_writes_explicitly_typed_parquet(tmp_path: Path) -> None:
    # The harness's own contract: files carry the declared types, not inferred ones.
    view = stats_view([{"driver_id": 1, "event_ts": T, "created_ts": None, "conv": None}], created=True)
    case = PitCase([view])
    spine = spine_table([{"row_id": 1, "driver_id": 1, "ts": T}], SPINE_TYPES)
    run_pit("duckdb", tmp_path, case, spine)
    schema = pq.read_schema(tmp_path / view.path)
    assert schema.field("conv").type == pa.int64()
    assert schema.field("created_ts").type == pa.timestamp("us")
    assert fsql.load_project(tmp_path).definitions.feature_views["driver_stats"].ttl is None
