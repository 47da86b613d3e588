"""The online == offline invariant (DESIGN.md) for derived features with request data: after
materializing up to T, a lookup of the example's `ride_offer_scoring` service, request fields
sent beside the keys, equals the training set of a spine at T whose columns carry the same
request fields, row for row, for every rider and driver and for unknown ones."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from online_helpers import online_url
from tile_helpers import close

import fsql
from fsql.build import BuildOptions
from fsql.errors import CompileError
from fsql.online.result import FeatureStatus

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


def test_derived_features_online_equal_offline_with_request_data(online_example: Path) -> None:
    project = fsql.load_project(online_example)
    result = project.build(BuildOptions(end=T))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    spine = _spine(online_example)
    offline = project.training_set(service=SERVICE, spine=spine).to_pylist()
    request_fields = ("offered_fare", "offered_at", "pickup_eta_at")
    entity_rows = [{k: row[k] for k in ("rider_id", "driver_id", *request_fields)} for row in offline]
    with project.online_store() as store:
        looked_up = store.lookup(entity_rows, service=SERVICE, now=T)
    derived = [f.name for f in project.definitions.derived_views["ride_offer"].features]
    assert list(looked_up.feature_names) == ["trips_30d", "acc_rate", *derived]
    expected = [{k: v for k, v in row.items() if k not in ("event_timestamp", *request_fields)} for row in offline]
    rows = looked_up.rows()
    assert len(rows) == len(expected)
    wrong = [(a, b) for a, b in zip(rows, expected, strict=True) if not close(a, b)]
    assert not wrong, wrong[:3]
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
    spine = _spine(online_example).drop_columns(["offered_at"])
    with pytest.raises(CompileError, match=r"reads request field\(s\) offered_at, which the spine lacks"):
        project.training_set(service=SERVICE, spine=spine)
