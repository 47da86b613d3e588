"""Property: on random feature rows and spines, the engine's result is one the oracle accepts.

Small key spaces (2-3 values, NULL included) and a coarse time grid (30 minute steps, a ttl
that is a multiple of the step) make ties, ttl boundaries and events at the spine time
common. Every feature row carries a unique `rid` feature, so a tuple accepted by the oracle
also proves that all features of a view came from one row.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pit_harness import BERLIN, ENGINES, Entity, Feature, PitCase, View, mismatches, run_pit, spine_table

pytestmark = pytest.mark.slow  # hypothesis: CI runs them; -m 'not slow' leaves them out

BASE = datetime(2024, 3, 31, 0, 0)  # naive UTC; Berlin moves its clocks at 01:00 UTC this day
STEP = timedelta(minutes=30)
EVENT_STEPS = 7  # feature times: BASE + 0..6 steps
SPINE_STEPS = 9  # spine times: BASE + 0..8 steps
TTLS = (None, "30m", "1h", "90m", "2h")

DRIVER = Entity("driver", (("driver_id", "bigint"),))
ZONE = Entity("zone", (("zone_id", "string"),))
KINDS = {"driver": (DRIVER,), "zone": (ZONE,), "pair": (DRIVER, ZONE)}
# Two values and NULL (drawn one time in five) per key. (1, '12') and (11, '2') would collide
# if keys were concatenated into one string.
DRIVER_IDS = (1, 11, 1, 11, None)
ZONE_IDS = ("12", "2", "12", "2", None)
BERLIN_TZ = ZoneInfo(BERLIN)

PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def grid_time(step: int, aware: bool) -> datetime:
    """A grid point, naive UTC or the same instant in Berlin time."""
    naive = BASE + step * STEP
    return naive.replace(tzinfo=UTC).astimezone(BERLIN_TZ) if aware else naive


@st.composite
def views(draw: st.DrawFn, index: int) -> View:
    name = f"v{index}"
    kind = draw(st.sampled_from(sorted(KINDS)))
    entities = KINDS[kind]
    created = draw(st.booleans())
    ttl = draw(st.sampled_from(TTLS))
    event_aware = draw(st.booleans())
    created_aware = draw(st.booleans())
    row_count = draw(st.integers(0, 10))
    rows = []
    for rid in range(row_count):
        row: dict[str, Any] = {"rid": rid}
        if kind in ("driver", "pair"):
            row["driver_id"] = draw(st.sampled_from(DRIVER_IDS))
        if kind in ("zone", "pair"):
            row["zone_id"] = draw(st.sampled_from(ZONE_IDS))
        # One draw in EVENT_STEPS + 1 is a NULL event time: such a row must never match.
        event = draw(st.integers(0, EVENT_STEPS))
        row["event_ts"] = None if event == EVENT_STEPS else grid_time(event, event_aware)
        if created:
            stamp = draw(st.one_of(st.none(), st.integers(0, EVENT_STEPS + 1)))
            row["created_ts"] = None if stamp is None else grid_time(stamp, created_aware)
        row["val"] = draw(st.one_of(st.none(), st.integers(-2, 2)))
        rows.append(row)
    arrow_types = {}
    if event_aware:
        arrow_types["event_ts"] = pa.timestamp("us", tz=BERLIN)
    if created_aware:
        arrow_types["created_ts"] = pa.timestamp("us", tz=BERLIN)
    return View(
        name,
        entities,
        {"rid": "bigint", "val": "bigint"},
        (
            Feature(f"{name}_rid", "bigint", expr="rid"),
            Feature(f"{name}_val", "bigint", expr="val"),
            Feature(f"{name}_val10", "bigint", expr="val * 10 + rid"),
        ),
        rows,
        ttl=ttl,
        created=created,
        event_type="timestamptz" if event_aware else "timestamp",
        created_type="timestamptz" if created_aware else "timestamp",
        arrow_types=arrow_types,
        reference_exprs={
            f"{name}_rid": lambda r: r["rid"],
            f"{name}_val": lambda r: r["val"],
            f"{name}_val10": lambda r: None if r["val"] is None else r["val"] * 10 + r["rid"],
        },
    )


@st.composite
def spines(draw: st.DrawFn) -> pa.Table:
    aware = draw(st.booleans())
    count = draw(st.integers(1, 8))
    rows = [
        {
            "row_id": i,
            "driver_id": draw(st.sampled_from(DRIVER_IDS)),
            "zone_id": draw(st.sampled_from(ZONE_IDS)),
            # NULL spine timestamps are left to test_null_spine_timestamp_gives_null.
            "ts": grid_time(draw(st.integers(0, SPINE_STEPS - 1)), aware),
            "label": draw(st.one_of(st.none(), st.text(max_size=3))),
        }
        for i in range(count)
    ]
    types = {
        "row_id": "bigint",
        "driver_id": "bigint",
        "zone_id": "string",
        "ts": pa.timestamp("us", tz=BERLIN) if aware else "timestamp",
        "label": "string",
    }
    return spine_table(rows, types)


def check_engine_against_oracle(engine: str, case: PitCase, spine: pa.Table, full_feature_names: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="fsql-pit-") as directory:
        result = run_pit(engine, Path(directory), case, spine, full_feature_names=full_feature_names)
    problems = mismatches(result, case, spine, full_feature_names=full_feature_names)
    assert not problems, "\n".join(problems) + "\n" + result.sql
    out = {r["row_id"]: r for r in result.rows()}
    for given_row in spine.to_pylist():
        assert {k: out[given_row["row_id"]][k] for k in given_row} == given_row  # the spine passes through


@PROPERTY_SETTINGS
@given(view=views(0), spine=spines(), full_feature_names=st.booleans())
def test_one_view_matches_the_oracle(view: View, spine: pa.Table, full_feature_names: bool) -> None:
    for engine in ENGINES:
        check_engine_against_oracle(engine, PitCase([view]), spine, full_feature_names)


@PROPERTY_SETTINGS
@given(first=views(0), second=views(1), spine=spines(), full_feature_names=st.booleans())
def test_two_views_in_one_request_match_the_oracle(
    first: View, second: View, spine: pa.Table, full_feature_names: bool
) -> None:
    for engine in ENGINES:
        check_engine_against_oracle(engine, PitCase([first, second]), spine, full_feature_names)


@st.composite
def dense_ties(draw: st.DrawFn) -> tuple[View, pa.Table]:
    """One key, two event times, many rows: nearly every spine row meets a tie."""
    created = draw(st.booleans())
    rows = []
    for rid in range(draw(st.integers(1, 10))):
        row: dict[str, Any] = {"rid": rid, "driver_id": 1, "event_ts": grid_time(draw(st.integers(2, 3)), False)}
        if created:
            row["created_ts"] = draw(st.sampled_from([None, grid_time(0, False), grid_time(1, False)]))
        row["val"] = draw(st.one_of(st.none(), st.integers(0, 1)))
        rows.append(row)
    view = View(
        "ties",
        (DRIVER,),
        {"rid": "bigint", "val": "bigint"},
        (Feature("rid", "bigint"), Feature("val", "bigint")),
        rows,
        ttl=draw(st.sampled_from((None, "30m"))),
        created=created,
    )
    spine = spine_table(
        [{"row_id": i, "driver_id": 1, "ts": grid_time(step, False)} for i, step in enumerate(range(1, 6))],
        {"row_id": "bigint", "driver_id": "bigint", "ts": "timestamp"},
    )
    return view, spine


@PROPERTY_SETTINGS
@given(case=dense_ties())
def test_dense_ties_match_the_oracle(case: tuple[View, pa.Table]) -> None:
    view, spine = case
    for engine in ENGINES:
        check_engine_against_oracle(engine, PitCase([view]), spine, False)
