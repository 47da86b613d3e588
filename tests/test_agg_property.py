"""Property: on random rows and spines, every engine's windowed aggregates are the oracle's.

Small key spaces (two riders and NULL), times on a 30-minute grid and a microsecond either
side of it (so events sit on window edges, and granularity floors them), windows of 30m,
1h and 2h with an optional 30m granularity, NULL values, created-time ties for `last`,
NULL spine times, and aware spine times. DuckDB, Postgres, BigQuery (transpiled to DuckDB)
and Spark run the same draws; example counts stay modest for the suite's time.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from agg_harness import Agg, AggCase, AggView, agg_mismatches, postgres_runner, spine_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pit_harness import BERLIN, Entity, run_pit
from pit_window import registered, run_bigquery_on_duckdb, run_spark

BASE = datetime(2024, 3, 31, 0, 0)  # naive UTC; Berlin moves its clocks at 01:00 UTC this day
STEP = timedelta(minutes=30)
US = timedelta(microseconds=1)
RIDER = Entity("rider", (("rider_id", "bigint"),))
RIDERS = (1, 2, 1, 2, None)
WINDOWS = ("30m", "1h", "2h")
SPINE_TYPES: dict[str, Any] = {"row_id": "bigint", "rider_id": "bigint", "ts": "timestamp"}
AWARE_SPINE_TYPES: dict[str, Any] = {**SPINE_TYPES, "ts": pa.timestamp("us", tz=BERLIN)}


def _positive(row: dict[str, Any]) -> bool | None:
    return None if row.get("val") is None else row["val"] > 0


AGGREGATIONS = (
    Agg("rows", "count", ()),
    Agg("vals", "count", (), expr="val"),
    Agg("total", "sum", (), expr="val"),
    Agg("positive_total", "sum", (), expr="val", filter="val > 0", reference_filter=_positive),
    Agg("mean", "avg", (), expr="val"),
    Agg("low", "min", (), expr="val"),
    Agg("high_name", "max", (), expr="name"),
    Agg("sd", "stddev", (), expr="val"),
    Agg("names", "count_distinct", (), expr="name"),
    Agg("latest", "last", (), expr="val"),
    Agg("latest_positive", "last", (), expr="val", filter="val > 0", reference_filter=_positive),
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grid_time(draw: st.DrawFn, steps: int) -> datetime:
    return BASE + draw(st.integers(0, steps)) * STEP + draw(st.sampled_from((-US, timedelta(0), timedelta(0), US)))


# What DuckDB reads from running totals when a view asks for nothing else (counts, integer sums, avgs).
EXACT = tuple(a for a in AGGREGATIONS if a.function in ("count", "sum", "avg"))


@st.composite
def aggregate_views(draw: st.DrawFn, pool: tuple[Agg, ...] = AGGREGATIONS) -> AggView:
    created = draw(st.booleans())
    rows = []
    for _ in range(draw(st.integers(0, 10))):
        row: dict[str, Any] = {
            "rider_id": draw(st.sampled_from(RIDERS)),
            "event_ts": draw(grid_time(6)),
            "val": draw(st.one_of(st.none(), st.integers(-2, 2))),
            "name": draw(st.sampled_from(("a", "b", None))),
        }
        if created:
            row["created_ts"] = draw(st.one_of(st.none(), grid_time(2)))
        rows.append(row)
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique_by=lambda a: a.name))
    aggregations = tuple(
        Agg(**{**a.__dict__, "windows": tuple(draw(st.lists(st.sampled_from(WINDOWS), min_size=1, unique=True)))})
        for a in chosen
    )
    granularity = draw(st.sampled_from((None, "30m")))
    columns = {"val": "bigint", "name": "string"}
    return AggView("trips", (RIDER,), columns, aggregations, rows, granularity=granularity, created=created)


@st.composite
def spines(draw: st.DrawFn) -> pa.Table:
    aware = draw(st.booleans())
    rows = []
    for row_id in range(draw(st.integers(1, 6))):
        ts = draw(st.one_of(grid_time(8), st.none())) if draw(st.integers(0, 7)) == 0 else draw(grid_time(8))
        if ts is not None and aware:
            ts = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(BERLIN))
        rows.append({"row_id": row_id, "rider_id": draw(st.sampled_from(RIDERS)), "ts": ts})
    return spine_table(rows, AWARE_SPINE_TYPES if aware else SPINE_TYPES)


def check(engine: str, runner: Any, view: AggView, spine: pa.Table) -> None:
    case = AggCase([view])
    with tempfile.TemporaryDirectory(prefix="fsql-agg-") as directory:
        if runner is None:
            result = run_pit(engine, Path(directory), case, spine)  # type: ignore[arg-type]
        else:
            with registered(f"{engine}_agg", runner):
                result = run_pit(f"{engine}_agg", Path(directory), case, spine)  # type: ignore[arg-type]
    problems = agg_mismatches(result, case, spine)
    assert not problems, "\n".join(problems) + "\n" + result.sql


@SETTINGS
@given(aggregate_views(), spines())
def test_duckdb_agrees_with_the_oracle(view: AggView, spine: pa.Table) -> None:
    check("duckdb", None, view, spine)


@SETTINGS
@given(aggregate_views(EXACT), spines())
def test_duckdb_running_totals_agree_with_the_oracle(view: AggView, spine: pa.Table) -> None:
    check("duckdb", None, view, spine)


@settings(SETTINGS, max_examples=25)
@given(view=aggregate_views(), spine=spines())
def test_postgres_agrees_with_the_oracle(postgres_dsn: str, view: AggView, spine: pa.Table) -> None:
    check("postgres", postgres_runner(postgres_dsn), view, spine)


@SETTINGS
@given(aggregate_views(), spines())
def test_bigquery_transpiled_agrees_with_the_oracle(view: AggView, spine: pa.Table) -> None:
    check("bigquery", run_bigquery_on_duckdb, view, spine)


@pytest.mark.spark
@settings(SETTINGS, max_examples=12)
@given(aggregate_views(), spines())
def test_spark_agrees_with_the_oracle(view: AggView, spine: pa.Table) -> None:
    check("spark", run_spark, view, spine)
