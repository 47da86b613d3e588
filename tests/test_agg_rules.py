"""One test per windowed-aggregate rule of DESIGN.md ("Windowed aggregates"), on DuckDB and Postgres.

Each test states the expected values by hand, checks that the oracle (tests/agg_reference.py)
agrees, and checks the engine against both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from agg_harness import Agg, AggCase, AggView, agg_mismatches, postgres_runner, spine_table
from agg_reference import accepts, reference_aggregates
from pit_harness import BERLIN, Entity, Feature, PitResult, View, run_pit
from pit_window import Runner as PitRunner
from pit_window import registered, run_bigquery_on_duckdb, run_spark

T = datetime(2024, 3, 10, 12, 0, 0)  # naive: UTC
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
RIDER = Entity("rider", (("rider_id", "bigint"),))
SPINE_TYPES: dict[str, Any] = {"row_id": "bigint", "rider_id": "bigint", "ts": "timestamp"}

Runner = Callable[..., PitResult]


ENGINE_PARAMS = ["duckdb", "postgres", "bigquery", pytest.param("spark", marks=pytest.mark.spark)]


def runner_for(engine: str, request: pytest.FixtureRequest) -> PitRunner | None:
    """The bank's runner of an engine (None: DuckDB's own, already registered)."""
    if engine == "postgres":
        return postgres_runner(request.getfixturevalue("postgres_dsn"))
    return {"duckdb": None, "bigquery": run_bigquery_on_duckdb, "spark": run_spark}[engine]


@pytest.fixture(params=ENGINE_PARAMS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """run(case, spine, **request) on DuckDB, Postgres, BigQuery (transpiled to DuckDB) or Spark."""
    counter = itertools.count()
    runner = runner_for(request.param, request)

    def go(case: AggCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        root = tmp_path / f"project{next(counter)}"
        if runner is None:
            return run_pit("duckdb", root, case, spine, **kwargs)  # type: ignore[arg-type]
        with registered(f"{request.param}_agg", runner):
            return run_pit(f"{request.param}_agg", root, case, spine, **kwargs)  # type: ignore[arg-type]

    return go


def view(
    aggregations: tuple[Agg, ...],
    rows: list[dict[str, Any]],
    *,
    columns: dict[str, str] | None = None,
    granularity: str | None = None,
    created: bool = False,
) -> AggView:
    return AggView(
        "trips", (RIDER,), columns or {"fare": "bigint"}, aggregations, rows, granularity=granularity, created=created
    )


def check(
    run: Runner, case: AggCase, spine: pa.Table, expected: dict[Hashable, dict[str, Any]], **kwargs: Any
) -> dict[Hashable, dict[str, Any]]:
    """Run the case; the oracle must give `expected` (value by value) and the engine must agree with both."""
    for v in case.views:
        if isinstance(v, AggView):
            oracle = reference_aggregates(v.reference(), v.rows, spine.to_pylist(), spine_ts="ts")
            for rid, values in expected.items():
                for name, value in values.items():
                    if name in oracle[rid]:
                        assert accepts(oracle[rid][name], value), f"oracle: row {rid} {name} {oracle[rid][name]}"
    result = run(case, spine, **kwargs)
    problems = agg_mismatches(result, case, spine)
    assert not problems, "\n".join(problems) + "\n" + result.sql
    got = result.by_id()
    for rid, values in expected.items():
        for name, value in values.items():
            assert accepts({value}, got[rid][name]), f"row {rid} {name}: {got[rid][name]!r}, expected {value!r}"
    return got


def rows_at(*times_and_fares: tuple[datetime, int | None], rider: int = 1) -> list[dict[str, Any]]:
    return [{"rider_id": rider, "event_ts": t, "fare": fare} for t, fare in times_and_fares]


def one_spine(*times: datetime | None, rider: int | None = 1) -> pa.Table:
    return spine_table([{"row_id": i, "rider_id": rider, "ts": t} for i, t in enumerate(times)], SPINE_TYPES)


def test_window_is_half_open_at_both_ends_to_the_microsecond(run: Runner) -> None:
    rows = rows_at((T - HOUR - US, 1), (T - HOUR, 10), (T - US, 100), (T, 1000), (T + US, 10000))
    aggregations = (Agg("n", "count", ("1h",)), Agg("fare", "sum", ("1h",)))
    spine = one_spine(T, T + US, T - US)
    expected = {
        0: {"n_1h": 2, "fare_1h": 110},  # t - 1h counts, t does not
        1: {"n_1h": 2, "fare_1h": 1100},  # (t + 1us) - 1h = t - 1h + 1us: t - 1h is out, t is in
        2: {"n_1h": 2, "fare_1h": 11},  # (t - 1us) - 1h: t - 1h - 1us in, t - 1us out
    }
    check(run, AggCase([view(aggregations, rows)]), spine, expected)


def test_granularity_snaps_both_ends_also_before_1970(run: Runner) -> None:
    before = datetime(1969, 12, 31, 23, 30)  # floor to 1h: 23:00, window [21:00, 23:00)
    rows = rows_at(
        (datetime(1969, 12, 31, 20, 59, 59, 999999), 1),
        (datetime(1969, 12, 31, 21, 0), 10),
        (datetime(1969, 12, 31, 22, 59, 59, 999999), 100),
        (datetime(1969, 12, 31, 23, 0), 1000),
        (T - 2 * HOUR - US, 10000),  # 09:59:59.999999: out of [10:00, 12:00)
        (T - 2 * HOUR, 100000),  # 10:00: in
        (T - US, 1000000),  # 11:59:59.999999: in
    )
    spine = one_spine(before, T + timedelta(minutes=59))  # 12:59 floors to 12:00: [10:00, 12:00)
    expected = {0: {"n_2h": 2, "fare_2h": 110}, 1: {"n_2h": 2, "fare_2h": 1100000}}
    aggregations = (Agg("n", "count", ("2h",)), Agg("fare", "sum", ("2h",)))
    check(run, AggCase([view(aggregations, rows, granularity="1h")]), spine, expected)


FUNCTIONS = (
    Agg("rows", "count", ("1h",)),
    Agg("fares", "count", ("1h",), expr="fare"),
    Agg("total", "sum", ("1h",), expr="fare"),
    Agg("mean", "avg", ("1h",), expr="fare"),
    Agg("low", "min", ("1h",), expr="fare"),
    Agg("high", "max", ("1h",), expr="fare"),
    Agg("sd", "stddev", ("1h",), expr="fare"),
    Agg("kinds", "count_distinct", ("1h",), expr="fare"),
    Agg("latest", "last", ("1h",), expr="fare"),
)


EXACT = FUNCTIONS[:4]  # count, count(x), sum, avg of a BIGINT: DuckDB reads them from running totals


def exact_part(expected: dict[Hashable, dict[str, Any]]) -> dict[Hashable, dict[str, Any]]:
    names = {f"{a.name}_1h" for a in EXACT}
    return {rid: {n: v for n, v in values.items() if n in names} for rid, values in expected.items()}


def test_each_function_skips_nulls_but_last_keeps_the_latest_even_null(run: Runner) -> None:
    rows = rows_at((T - 50 * US, 1), (T - 40 * US, None), (T - 30 * US, 3), (T - 20 * US, 3), (T - 10 * US, None))
    expected = {
        0: {
            "rows_1h": 4,  # the spine time is T - 10us: the row at T - 10us is not before it
            "fares_1h": 3,
            "total_1h": 7,
            "mean_1h": 7 / 3,
            "low_1h": 1,
            "high_1h": 3,
            "sd_1h": math.sqrt(4 / 3),
            "kinds_1h": 2,
            "latest_1h": 3,
        },
        1: {"rows_1h": 5, "fares_1h": 3, "total_1h": 7, "kinds_1h": 2, "latest_1h": None},
    }
    check(run, AggCase([view(FUNCTIONS, rows)]), one_spine(T - 10 * US, T), expected)
    check(run, AggCase([view(EXACT, rows)]), one_spine(T - 10 * US, T), exact_part(expected))  # running totals


def test_empty_windows_count_zero_and_the_rest_is_null(run: Runner) -> None:
    rows = rows_at((T - 2 * HOUR, 5))  # outside the 1h window of every spine row
    spine = spine_table(
        [{"row_id": 0, "rider_id": 1, "ts": T}, {"row_id": 1, "rider_id": 2, "ts": T}], SPINE_TYPES
    )  # rider 2 has no rows at all
    empty = {"rows_1h": 0, "fares_1h": 0, "kinds_1h": 0, "total_1h": None, "mean_1h": None, "low_1h": None}
    empty |= {"high_1h": None, "sd_1h": None, "latest_1h": None}
    check(run, AggCase([view(FUNCTIONS, rows)]), spine, {0: empty, 1: empty})
    check(run, AggCase([view(EXACT, rows)]), spine, exact_part({0: empty, 1: empty}))


def test_a_single_value_has_no_sample_stddev(run: Runner) -> None:
    rows = rows_at((T - US, 7), (T - 2 * US, None))
    check(run, AggCase([view(FUNCTIONS, rows)]), one_spine(T), {0: {"sd_1h": None, "fares_1h": 1, "mean_1h": 7.0}})


def test_count_distinct_counts_repeats_once(run: Runner) -> None:
    rows = rows_at(*[(T - (i + 1) * US, fare) for i, fare in enumerate([4, 4, 5, None, 4, 6, 5])])
    check(run, AggCase([view(FUNCTIONS, rows)]), one_spine(T), {0: {"kinds_1h": 3, "fares_1h": 6}})


def test_last_breaks_event_ties_by_created_time_a_null_created_lowest(run: Runner) -> None:
    e = T - 10 * US
    rows = [
        {"rider_id": 1, "event_ts": e, "created_ts": T + HOUR, "fare": 1},
        {"rider_id": 1, "event_ts": e, "created_ts": T + 2 * HOUR, "fare": None},  # latest created: wins, NULL
        {"rider_id": 1, "event_ts": e - US, "created_ts": T + 3 * HOUR, "fare": 3},  # older event
        {"rider_id": 2, "event_ts": e, "created_ts": None, "fare": 4},
        {"rider_id": 2, "event_ts": e, "created_ts": T, "fare": 5},  # a created time beats NULL
    ]
    spine = spine_table([{"row_id": 0, "rider_id": 1, "ts": T}, {"row_id": 1, "rider_id": 2, "ts": T}], SPINE_TYPES)
    aggregations = (Agg("latest", "last", ("1h",), expr="fare"),)
    check(run, AggCase([view(aggregations, rows, created=True)]), spine, {0: {"latest_1h": None}, 1: {"latest_1h": 5}})


def test_bigint_sums_stay_exact_past_2_to_the_53(run: Runner) -> None:
    big = 2**53
    rows = rows_at((T - US, big + 1), (T - 2 * US, big + 3), (T - 3 * US, 1))
    aggregations = (Agg("fare", "sum", ("1h",)),)
    got = check(run, AggCase([view(aggregations, rows)]), one_spine(T), {0: {"fare_1h": 2 * big + 5}})
    assert isinstance(got[0]["fare_1h"], int)


def test_a_bigint_sum_that_overflows_is_an_error(run: Runner) -> None:
    rows = rows_at((T - US, 2**62), (T - 2 * US, 2**62))
    aggregations = (Agg("fare", "sum", ("1h",)),)
    with pytest.raises(Exception, match=r"(?i)out of range|overflow"):  # BigQuery's transpiled run raises DuckDB's own
        run(AggCase([view(aggregations, rows)]), one_spine(T))


def test_a_running_total_past_bigint_keeps_each_window_exact(run: Runner) -> None:
    # DuckDB reads sums as differences of running totals: those pass 2**63 here, no window does.
    rows = rows_at((T - 3 * HOUR, 2**62), (T - 2 * HOUR - US, 2**62), (T - 2 * HOUR + US, 2**62), (T - US, 5))
    aggregations = (Agg("fare", "sum", ("1h",)), Agg("mean", "avg", ("1h",), expr="fare"))
    spine = one_spine(T, T - HOUR + US)  # [T - 2h + 1us, T - 1h + 1us): the third row alone
    expected = {0: {"fare_1h": 5, "mean_1h": 5.0}, 1: {"fare_1h": 2**62, "mean_1h": float(2**62)}}
    check(run, AggCase([view(aggregations, rows)]), spine, expected)


def test_a_window_of_only_null_values_after_earlier_values_sums_to_null(run: Runner) -> None:
    rows = rows_at((T - 3 * HOUR, 5), (T - 2 * HOUR, 7), (T - 30 * US, None), (T - 20 * US, None))
    expected = {0: {"rows_1h": 2, "fares_1h": 0, "total_1h": None, "mean_1h": None}}
    check(run, AggCase([view(EXACT, rows)]), one_spine(T), expected)


def test_rows_tying_on_one_event_time_count_together_on_both_ends(run: Runner) -> None:
    e = T - HOUR
    rows = rows_at((e, 1), (e, 10), (e, None), (e + US, 100))
    aggregations = (Agg("n", "count", ("1h",)), Agg("fare", "sum", ("1h",)), Agg("mean", "avg", ("1h",), expr="fare"))
    spine = one_spine(e, e + US, T, T + US)  # the ties: none before e, all from e; at t - 1h all, then none
    expected = {
        0: {"n_1h": 0, "fare_1h": None, "mean_1h": None},
        1: {"n_1h": 3, "fare_1h": 11, "mean_1h": 5.5},
        2: {"n_1h": 4, "fare_1h": 111, "mean_1h": 37.0},
        3: {"n_1h": 1, "fare_1h": 100, "mean_1h": 100.0},
    }
    check(run, AggCase([view(aggregations, rows)]), spine, expected)


def test_windows_of_aware_spine_times_are_fixed_lengths_across_a_dst_day(run: Runner) -> None:
    berlin = ZoneInfo(BERLIN)
    # Berlin skips 02:00-03:00 local on 2024-03-31 (01:00 UTC): the day has 23 local hours,
    # but 1d is 86,400 s and the 1d granularity floors to UTC midnight.
    t = datetime(2024, 3, 31, 23, 30, tzinfo=berlin)  # 21:30 UTC; floor(1h) 21:00 UTC; floor(1d) 00:00 UTC
    rows = rows_at(
        (datetime(2024, 3, 30, 21, 0, tzinfo=UTC), 1),  # exactly 1d before 21:00 UTC: in the 1h-granular 1d
        (datetime(2024, 3, 30, 23, 30, tzinfo=UTC), 10),  # 2024-03-31 00:30 Berlin
        (datetime(2024, 3, 31, 0, 0, tzinfo=UTC), 100),  # UTC midnight: the end of the daily window
        (datetime(2024, 3, 31, 20, 59, tzinfo=UTC), 1000),
    )
    spine = spine_table([{"row_id": 0, "rider_id": 1, "ts": t}], {**SPINE_TYPES, "ts": pa.timestamp("us", tz=BERLIN)})
    hourly = AggView("hourly", (RIDER,), {"fare": "bigint"}, (Agg("fare", "sum", ("1d",)),), rows, granularity="1h")
    daily = AggView(
        "daily", (RIDER,), {"fare": "bigint"}, (Agg("day_fare", "sum", ("1d",), expr="fare"),), rows, granularity="1d"
    )
    # hourly: [03-30 21:00, 03-31 21:00) UTC -> 1 + 10 + 100 + 1000; daily: [03-30 00:00, 03-31 00:00) -> 1 + 10
    check(run, AggCase([hourly, daily]), spine, {0: {"fare_1d": 1111, "day_fare_1d": 11}})


def test_a_null_spine_time_gives_null_for_every_aggregate(run: Runner) -> None:
    rows = rows_at((T - US, 1))
    nulls = {"rows_1h": None, "fares_1h": None, "kinds_1h": None, "total_1h": None, "latest_1h": None}
    expected = {0: nulls, 1: {"rows_1h": 1, "total_1h": 1}}
    check(run, AggCase([view(FUNCTIONS, rows)]), one_spine(None, T), expected)
    check(run, AggCase([view(EXACT, rows)]), one_spine(None, T), exact_part(expected))


def test_null_keys_never_match(run: Runner) -> None:
    rows = [*rows_at((T - US, 1)), {"rider_id": None, "event_ts": T - US, "fare": 5}]
    spine = spine_table([{"row_id": 0, "rider_id": None, "ts": T}, {"row_id": 1, "rider_id": 1, "ts": T}], SPINE_TYPES)
    expected = {0: {"rows_1h": 0, "total_1h": None}, 1: {"rows_1h": 1}}
    check(run, AggCase([view(FUNCTIONS, rows)]), spine, expected)
    check(run, AggCase([view(EXACT, rows)]), spine, exact_part(expected))


def test_duplicate_spine_rows_each_get_one_row(run: Runner) -> None:
    rows = rows_at((T - US, 1), (T - 2 * US, 2))
    spine = spine_table([{"row_id": i, "rider_id": 1, "ts": T} for i in range(3)], SPINE_TYPES)
    expected = {i: {"rows_1h": 2, "total_1h": 3} for i in range(3)}
    for aggregations in (FUNCTIONS, EXACT):
        got = check(run, AggCase([view(aggregations, rows)]), spine, expected)
        assert len(got) == 3


def test_a_service_mixes_an_aggregate_view_with_latest_value_views(run: Runner) -> None:
    windows = view(
        (Agg("n", "count", ("1h", "2h")), Agg("fare", "sum", ("2h",))),
        rows_at((T - timedelta(minutes=90), 4), (T - US, 6)),
    )
    profile = View(
        "profile",
        (RIDER,),
        {"rating": "double"},
        (Feature("rating", "double"),),
        [{"rider_id": 1, "event_ts": T - HOUR, "rating": 4.5}],
    )
    status = View(
        "status",
        (RIDER,),
        {"tier": "string"},
        (Feature("tier", "string"),),
        [{"rider_id": 1, "event_ts": T, "tier": "gold"}],
        ttl="1d",
    )
    case = AggCase([profile, windows, status], services={"mixed": ["profile", "trips:n_1h", "trips:fare_2h", "status"]})
    spine = spine_table([{"row_id": 0, "rider_id": 1, "ts": T}, {"row_id": 1, "rider_id": 1, "ts": T}], SPINE_TYPES)
    result = run(case, spine, service="mixed")
    got = result.by_id()
    assert len(got) == 2
    for rid in (0, 1):
        assert (got[rid]["rating"], got[rid]["n_1h"], got[rid]["fare_2h"], got[rid]["tier"]) == (4.5, 1, 10, "gold")
    assert "n_2h" not in got[0]


def test_last_min_and_max_of_booleans_and_strings(run: Runner) -> None:
    # Postgres has no max(boolean): the last of a boolean must not be computed as one.
    columns = {"fare": "bigint", "paid": "bool", "note": "string"}
    rows = [
        {"rider_id": 1, "event_ts": T - 3 * US, "fare": 1, "paid": True, "note": "b"},
        {"rider_id": 1, "event_ts": T - 2 * US, "fare": 2, "paid": False, "note": "a"},
        {"rider_id": 1, "event_ts": T - US, "fare": 3, "paid": None, "note": "c"},
        {"rider_id": 2, "event_ts": T - US, "fare": 4, "paid": True, "note": None},
    ]
    aggregations = (
        Agg("paid_last", "last", ("1h",), expr="paid"),
        Agg("note_last", "last", ("1h",), expr="note"),
        Agg("note_low", "min", ("1h",), expr="note"),
        Agg("note_high", "max", ("1h",), expr="note"),
        Agg("paid_kinds", "count_distinct", ("1h",), expr="paid"),
    )
    spine = spine_table(
        [
            {"row_id": 0, "rider_id": 1, "ts": T},
            {"row_id": 1, "rider_id": 2, "ts": T},
            {"row_id": 2, "rider_id": 1, "ts": T - US},
        ],
        SPINE_TYPES,
    )
    expected = {
        0: {"paid_last_1h": None, "note_last_1h": "c", "note_low_1h": "a", "note_high_1h": "c", "paid_kinds_1h": 2},
        1: {"paid_last_1h": True, "note_last_1h": None, "note_low_1h": None, "note_high_1h": None, "paid_kinds_1h": 1},
        2: {"paid_last_1h": False, "note_last_1h": "a", "note_low_1h": "a", "note_high_1h": "b", "paid_kinds_1h": 2},
    }
    check(run, AggCase([view(aggregations, rows, columns=columns)]), spine, expected)
