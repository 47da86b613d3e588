"""The online == offline invariant (DESIGN.md) for derived features with request data: after
materializing up to T, a lookup of the example's `ride_offer_scoring` service, request fields
sent beside the keys, equals the training set of a spine at T whose columns carry the same
request fields, row for row, for every rider and driver and for unknown ones."""

from __future__ import annotations

import math
import random
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from online_helpers import online_url
from tile_helpers import close

import fsql
from fsql.build import BuildOptions
from fsql.errors import CompileError
from fsql.online.lookup import HOIST_ROWS
from fsql.online.result import FeatureStatus, LookupResult

T = datetime(2024, 3, 18, 9, 30, tzinfo=UTC)
SERVICE = "ride_offer_scoring"
pytestmark = pytest.mark.postgres


@pytest.fixture
def online_example(seeded_example: Path, tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = tmp_path / "example"
    shutil.copytree(seeded_example, root, ignore=shutil.ignore_patterns("target"))
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online_url(postgres_dsn)}'\n      online_schema: {postgres_schema}\n"
    )
    return root


def _spine(root: Path) -> pa.Table:
    """Every (rider, driver) pair of the trips, plus unknown ones, with request fields that
    include a zero and a negative fare, NULLs, and a pickup before the offer."""
    trips = duckdb.sql(f"SELECT DISTINCT rider_id, driver_id FROM '{root / 'data' / 'trips.parquet'}' ORDER BY ALL")
    pairs = [(r, d) for r, d in trips.fetchall() if r is not None and d is not None][:300]
    pairs += [(-1, -1), (pairs[0][0], -1), (-1, pairs[0][1])]
    chooser = random.Random(11)
    fares = [chooser.choice([0.0, -3.5, None, 7.25, 12.0, 40.0, 1e-3]) for _ in pairs]
    offered = [T - timedelta(seconds=chooser.randint(0, 600), microseconds=chooser.randint(0, 999999)) for _ in pairs]
    eta = [
        None
        if i % 17 == 0
        else moment + timedelta(seconds=chooser.randint(-60, 900), microseconds=chooser.randint(0, 10))
        for i, moment in enumerate(offered)
    ]
    return pa.table(
        {
            "rider_id": [r for r, _ in pairs],
            "driver_id": [d for _, d in pairs],
            "event_timestamp": pa.array([T] * len(pairs), pa.timestamp("us", tz="UTC")),
            "offered_fare": pa.array(fares, pa.float64()),
            "offered_at": pa.array(offered, pa.timestamp("us", tz="UTC")),
            "pickup_eta_at": pa.array(eta, pa.timestamp("us", tz="UTC")),
        }
    )


REQUEST_FIELDS = ("offered_fare", "offered_at", "pickup_eta_at")


def _online_and_offline(
    project: fsql.Project, spine: pa.Table, *, one_at_a_time: bool = False
) -> tuple[list[LookupResult], list[dict[str, Any]]]:
    """The lookup of the spine's rows (in one call, or one call per row), checked equal to the training
    set's rows; the lookups and the training rows."""
    offline = project.training_set(service=SERVICE, spine=spine).to_pylist()
    entity_rows = [{k: row[k] for k in ("rider_id", "driver_id", *REQUEST_FIELDS)} for row in offline]
    with project.online_store() as store:
        calls = [[row] for row in entity_rows] if one_at_a_time else [entity_rows]
        looked_up = [store.lookup(rows, service=SERVICE, now=T) for rows in calls]
    expected = [{k: v for k, v in row.items() if k not in ("event_timestamp", *REQUEST_FIELDS)} for row in offline]
    rows = [row for result in looked_up for row in result.rows()]
    assert len(rows) == len(expected)
    wrong = [(a, b) for a, b in zip(rows, expected, strict=True) if not close(a, b)]
    assert not wrong, wrong[:3]
    return looked_up, expected


def test_derived_features_online_equal_offline_with_request_data(online_example: Path) -> None:
    project = fsql.load_project(online_example)
    result = project.build(BuildOptions(end=T))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    (looked_up,), _ = _online_and_offline(project, _spine(online_example))
    derived = [f.name for f in project.definitions.derived_views["ride_offer"].features]
    assert list(looked_up.feature_names) == ["trips_30d", "acc_rate", *derived]
    rows = looked_up.rows()
    # The bank of edge cases is really exercised: x / 0, ln(<= 0), NULL inputs and non-NULL values.
    for name in derived:
        if name == "is_big_fare":  # CASE ... ELSE false: never NULL
            assert {row[name] for row in rows} == {True, False}
            continue
        values = [row[name] for row in rows]
        assert any(v is None for v in values) and any(v is not None for v in values), name
    assert any(row["spend_per_trip_30d"] is None and row["trips_30d"] == 0 for row in rows)
    assert any(row["pickup_wait_s"] is not None and row["pickup_wait_s"] < 0 for row in rows)
    statuses = looked_up.statuses()
    assert {s[name] for s in statuses for name in derived} == {FeatureStatus.PRESENT}


def _with_request(spine: pa.Table, **columns: Any) -> pa.Table:
    """The spine with some request fields set to one value in every row."""
    for name, value in columns.items():
        column = pa.array([value] * spine.num_rows, spine.schema.field(name).type)
        spine = spine.set_column(spine.schema.get_field_index(name), name, column)
    return spine


def test_request_fields_of_one_value_for_every_row_online_equal_offline(online_example: Path) -> None:
    """Request fields whose rows all carry one value are bound once, as scalars: one entity at a time,
    one value in every row, one field alike and the others not, and a field NULL in every row."""
    project = fsql.load_project(online_example)
    project.build(BuildOptions(end=T))
    spine = _spine(online_example)
    # One call per row (every field one value), on rows that cover the edge cases of the bank.
    _online_and_offline(project, spine.slice(0, 40), one_at_a_time=True)
    offered = T - timedelta(minutes=2, microseconds=7)
    alike = _with_request(spine, offered_fare=12.0, offered_at=offered, pickup_eta_at=offered + timedelta(seconds=95))
    (looked_up,), _ = _online_and_offline(project, alike)
    assert {row["pickup_wait_s"] for row in looked_up.rows()} == {95.0}
    _online_and_offline(project, _with_request(spine, offered_fare=7.25))  # times still per row
    _online_and_offline(project, _with_request(spine, offered_at=offered))  # fares and ETAs per row
    nothing = _with_request(spine, offered_fare=None, pickup_eta_at=None)
    (looked_up,), _ = _online_and_offline(project, nothing)
    rows = looked_up.rows()
    assert {row["log_fare"] for row in rows} == {None} and {row["pickup_wait_s"] for row in rows} == {None}
    assert {row["is_big_fare"] for row in rows} == {False}  # NULL >= x is not true


def test_a_zero_and_a_negative_zero_are_two_values(online_example: Path) -> None:
    """-0.0 == 0.0 in Python, yet a derived feature can tell them apart (0 / 2 and -0 / 2)."""
    project = fsql.load_project(online_example)
    project.build(BuildOptions(end=T))
    spine = _spine(online_example)
    (looked_up,), _ = _online_and_offline(project, spine)
    known = next(row for row in looked_up.rows() if row["spend_per_trip_30d"])
    same = pc.and_(pc.equal(spine["rider_id"], known["rider_id"]), pc.equal(spine["driver_id"], known["driver_id"]))
    pair = spine.filter(same).take([0, 0])
    fares = pa.array([0.0, -0.0], pa.float64())
    pair = pair.set_column(pair.schema.get_field_index("offered_fare"), "offered_fare", fares)
    (looked_up,), expected = _online_and_offline(project, pair)
    signs = [math.copysign(1.0, row["fare_vs_usual"]) for row in looked_up.rows()]
    assert signs == [math.copysign(1.0, row["fare_vs_usual"]) for row in expected] == [1.0, -1.0]


def test_a_missing_request_field_is_named_online_and_offline(online_example: Path) -> None:
    project = fsql.load_project(online_example)
    with project.online_store() as store, pytest.raises(CompileError, match=r"lacks request field 'offered_at'"):
        store.lookup([{"rider_id": 1, "driver_id": 1001, "offered_fare": 3.0, "pickup_eta_at": T}], service=SERVICE)
    wrong_type = pytest.raises(CompileError, match=r"request field 'offered_fare' is double, not str")
    with wrong_type, project.online_store() as store:
        store.lookup(
            [{"rider_id": 1, "driver_id": 1001, "offered_fare": "3", "offered_at": T, "pickup_eta_at": T}],
            service=SERVICE,
        )
    # Among rows that otherwise carry one value, the odd one out is named by its row.
    row = {"rider_id": 1, "driver_id": 1001, "offered_fare": 3.0, "offered_at": T, "pickup_eta_at": T}
    for odd, words in [
        ({"offered_fare": True}, "entity row 2: request field 'offered_fare' is double, not bool (True)"),
        ({"offered_at": "2024-03-18"}, "entity row 2: request field 'offered_at' is timestamptz, not str"),
        ({"offered_fare": "3"}, "entity row 2: request field 'offered_fare' is double, not str ('3')"),
    ]:
        with project.online_store() as store, pytest.raises(CompileError) as refused:
            store.lookup([row, {**row, **odd}, row], service=SERVICE)
        assert words in str(refused.value)
    spine = _spine(online_example).drop_columns(["offered_at"])
    with pytest.raises(CompileError, match=r"reads request field\(s\) offered_at, which the spine lacks"):
        project.training_set(service=SERVICE, spine=spine)


def test_request_fields_alike_in_every_row_are_sent_once_each(online_example: Path) -> None:
    """The statement's shape is chosen per call from the values: a field whose rows all carry one value
    (one entity, or rows alike) is one scalar parameter; a field whose rows differ stays an array."""
    project = fsql.load_project(online_example)
    row = {"rider_id": 1, "driver_id": 1001, "offered_fare": 3.0, "offered_at": T, "pickup_eta_at": None}
    with project.online_store() as store:
        plan = store.plan(SERVICE, None, None)

        def sent(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
            return plan.statement(plan.params(rows, T))

        one_sql, one = sent([row])
        assert (one["req_0"], one["req_1"], one["req_2"]) == (3.0, T, None)
        assert "[]" not in one_sql.split("WITH ORDINALITY")[0].split("UNNEST(")[1].replace("BIGINT[]", "")
        elsewhere = T.astimezone(timezone(timedelta(hours=-5)))  # the same instant
        alike_sql, alike = sent([row, {**row, "rider_id": 2, "offered_fare": 3, "offered_at": elsewhere}])
        assert alike_sql == one_sql and (alike["req_0"], alike["req_1"], alike["req_2"]) == (3.0, T, None)
        # From HOIST_ROWS rows on, the features of request fields alone are computed once (InitPlans).
        hoisted = (
            "(SELECT CAST(CASE WHEN CAST(%(req_0)b",
            "(SELECT CAST((CAST((CAST(EXTRACT(EPOCH FROM CAST(%(req_2)b",
        )
        many_sql, _ = sent([{**row, "rider_id": r} for r in range(HOIST_ROWS)])
        assert all(f not in one_sql and f in many_sql for f in hoisted)
        mixed_sql, mixed = sent([row, {**row, "offered_fare": 4.0}] * (HOIST_ROWS // 2))
        assert mixed["req_0"] == [3.0, 4.0] * (HOIST_ROWS // 2) and (mixed["req_1"], mixed["req_2"]) == (T, None)
        assert mixed_sql != one_sql and "CAST(%(req_0)b AS DOUBLE PRECISION[])" in mixed_sql
        assert hoisted[0] not in mixed_sql and hoisted[1] in mixed_sql
        _, naive = sent([row, {**row, "offered_at": T.replace(tzinfo=None)}])  # naive is UTC: the same instant
        assert naive["req_1"] == T and naive["req_1"].tzinfo is not None
        _, zeros = sent([{**row, "offered_fare": 0.0}, {**row, "offered_fare": -0.0}])
        assert [math.copysign(1.0, fare) for fare in zeros["req_0"]] == [1.0, -1.0]
        assert store.plan(SERVICE, None, None).statement(plan.params([row], T))[0] == one_sql  # kept per shape
