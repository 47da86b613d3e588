"""Aggregations as definitions: one typed feature per window, in the order written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlglot import exp

import fsql
from fsql.spec import AggregateFunction

VALID_PROJECT = Path(__file__).parent / "fixtures" / "valid_project"

AGGREGATE_VIEW = """
sources:
  - name: payments
    table: payments
    timestamp: paid_at
    created_timestamp: loaded_at
    columns: {customer_id: bigint, paid_at: timestamptz, loaded_at: timestamptz, cents: bigint,
              units: int32, amount: double, ratio: float32, method: string, refunded: boolean, day: date}
feature_views:
  - name: customer_payments
    entities: [customer]
    source: payments
    granularity: 1h
    online: true
    aggregations:
      - {name: payments, function: count, windows: [1d, 7d]}
      - {name: paid_cents, function: count, expr: cents, windows: [7d]}
      - {name: cents, function: sum, windows: [7d, 30d], description: Cents paid.}
      - {name: units, function: sum, windows: [7d]}
      - {name: amount, function: sum, windows: [7d]}
      - {name: ratio_sum, function: sum, expr: ratio, windows: [7d]}
      - {name: avg_units, function: avg, expr: units, windows: [7d]}
      - {name: sd_cents, function: stddev, expr: cents, windows: [7d]}
      - {name: first_day, function: min, expr: day, windows: [7d]}
      - {name: methods, function: count_distinct, expr: method, windows: [7d]}
      - {name: last_refunded, function: last, expr: refunded, filter: "method = 'card'", windows: [7d]}
      - {name: cents_as_double, function: max, expr: cents, type: double, windows: [7d]}
      - {name: doubled, function: sum, expr: cents * 2, type: bigint, windows: [1w]}
"""


@pytest.fixture
def definitions(tmp_path: Path) -> fsql.Definitions:
    root = tmp_path / "project"
    shutil.copytree(VALID_PROJECT, root)
    (root / "definitions" / "payments.yml").write_text(AGGREGATE_VIEW, encoding="utf-8")
    return fsql.load_project(root, data_checks=False).validate()


def test_each_window_is_a_feature_named_and_typed_by_its_function(definitions: fsql.Definitions) -> None:
    view = definitions.feature_views["customer_payments"]
    T = exp.DType
    assert [(f.name, f.type) for f in view.features] == [
        ("payments_1d", T.BIGINT),
        ("payments_7d", T.BIGINT),
        ("paid_cents_7d", T.BIGINT),
        ("cents_7d", T.BIGINT),
        ("cents_30d", T.BIGINT),
        ("units_7d", T.BIGINT),
        ("amount_7d", T.DOUBLE),
        ("ratio_sum_7d", T.DOUBLE),
        ("avg_units_7d", T.DOUBLE),
        ("sd_cents_7d", T.DOUBLE),
        ("first_day_7d", T.DATE),
        ("methods_7d", T.BIGINT),
        ("last_refunded_7d", T.BOOLEAN),
        ("cents_as_double_7d", T.DOUBLE),
        ("doubled_1w", T.BIGINT),
    ]
    assert view.is_aggregate and view.granularity is not None and view.granularity.seconds == 3600
    assert all(
        f.aggregate is not None and f.aggregate.aggregation.feature_name(f.aggregate.window) == f.name
        for f in view.features
    )


def test_the_aggregation_keeps_what_was_written(definitions: fsql.Definitions) -> None:
    by_name = {a.name: a for a in definitions.feature_views["customer_payments"].aggregations}
    rows = by_name["payments"]
    assert (rows.function, rows.expression, rows.input_type, rows.is_column) == (
        AggregateFunction.COUNT,
        None,
        None,
        False,
    )
    cents = by_name["cents"]
    assert (cents.expression, cents.is_column, cents.input_type, cents.description) == (
        "cents",
        True,
        exp.DType.BIGINT,
        "Cents paid.",
    )
    assert by_name["last_refunded"].filter == "method = 'card'"
    assert by_name["cents_as_double"].input_type == exp.DType.DOUBLE
    assert [str(w) for w in by_name["cents"].windows] == ["7d", "30d"]


def test_a_feature_service_can_name_one_window(definitions: fsql.Definitions, tmp_path: Path) -> None:
    request = fsql.compile.resolve_features(definitions, features=["customer_payments:cents_30d"])
    assert request.output_names == ("cents_30d",)


def test_postgres_indexes_an_aggregate_views_source_on_keys_and_event_time(definitions: fsql.Definitions) -> None:
    from fsql.compile.latest import view_request
    from fsql.compile.strategy import strategy_for

    request = view_request(definitions, "customer_payments")
    statement = strategy_for("postgres").supporting_index(request, "postgres")
    assert statement == (
        'CREATE INDEX IF NOT EXISTS "payments__fsql_pit" ON payments("customer_id", "paid_at", "loaded_at" NULLS FIRST)'
    )


def test_an_aggregate_view_has_tiles_not_latest_rows(definitions: fsql.Definitions) -> None:
    from fsql.compile.latest import compile_latest_rows

    with pytest.raises(fsql.CompileError, match="it has no latest rows; its online table holds tiles"):
        compile_latest_rows(definitions, "customer_payments", dialect="duckdb")


def test_the_manifest_describes_aggregations_and_their_windows(definitions: fsql.Definitions) -> None:
    from fsql.artifacts import describe

    view = describe(definitions)["feature_views"]["customer_payments"]
    assert view["granularity"] == "1h" and view["online"] is True
    assert view["aggregations"]["last_refunded"] == {
        "function": "last", "expr": "refunded", "filter": "method = 'card'", "windows": ["7d"],
        "input_type": "boolean", "description": "",
    }  # fmt: skip
    assert view["aggregations"]["payments"]["windows"] == ["1d", "7d"]
    assert view["features"]["doubled_1w"] == {
        "type": "bigint", "expr": "cents * 2", "description": "", "aggregation": "doubled", "function": "sum",
        "window": "1w",
    }  # fmt: skip
