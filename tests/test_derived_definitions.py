"""Derived views in the definitions and the request: names resolved (qualified when two inputs
share one), types inferred, services and selection, full feature names, and the errors of a
request that cannot be compiled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlglot import exp

import fsql
from fsql.compile import Spine, compile_training_query
from fsql.compile.request import resolve_features
from fsql.errors import CompileError
from fsql.graph import select_views

VALID_PROJECT = Path(__file__).parent / "fixtures" / "valid_project"


def project_with(tmp_path: Path, text: str) -> fsql.Project:
    root = tmp_path / "project"
    shutil.copytree(VALID_PROJECT, root)
    (root / "definitions" / "derived.yml").write_text(text)
    return fsql.load_project(root, data_checks=False)


TWO_VIEWS = """
derived_views:
  - name: mix
    inputs: [customer_orders, store_sales]
    request: {basket: double, seen_at: timestamptz}
    features:
      - {name: ratio, expr: "customer_orders.last_amount / store_sales.revenue_last_day"}
      - {name: orders_plus, expr: "orders_last_day + 1"}
      - {name: wait, expr: "seconds_between(seen_at, seen_at)"}
      - {name: big, expr: "basket > 10 AND is_big"}
  - name: other
    request: {basket: bigint}
    features:
      - {name: basket_twice, expr: "basket * 2"}
feature_services:
  - name: scoring
    features: [mix:ratio, mix:big]
"""


def test_names_resolve_and_types_are_inferred(tmp_path: Path) -> None:
    definitions = project_with(tmp_path, TWO_VIEWS).validate()
    mix = definitions.derived_views["mix"]
    assert {f.name: f.type for f in mix.features} == {
        "ratio": exp.DType.DOUBLE,
        "orders_plus": exp.DType.BIGINT,
        "wait": exp.DType.DOUBLE,
        "big": exp.DType.BOOLEAN,
    }
    assert [i.ref for i in mix.inputs_of([mix.features[0]])] == [
        "customer_orders:last_amount",
        "store_sales:revenue_last_day",
    ]
    assert definitions.derived_views["other"].features[0].type is exp.DType.BIGINT


def test_a_service_reads_the_inputs_and_selection_follows_them(tmp_path: Path) -> None:
    definitions = project_with(tmp_path, TWO_VIEWS).validate()
    request = resolve_features(definitions, service="scoring")
    assert request.output_names == ("ratio", "big")
    hidden = [(v.view.name, f.feature.name) for v in request.views for f in v.features if f.hidden]
    assert hidden == [
        ("customer_orders", "last_amount"),
        ("customer_orders", "is_big"),
        ("store_sales", "revenue_last_day"),
    ]
    assert [f.name for f in request.request_fields] == ["basket"]
    assert select_views(definitions, select="+service:scoring") == ["customer_orders", "store_sales"]
    full = resolve_features(definitions, features=["mix:ratio", "customer_orders:last_amount"], full_feature_names=True)
    assert full.output_names == ("customer_orders__last_amount", "mix__ratio")
    assert not any(f.hidden for v in full.views for f in v.features if f.feature.name == "last_amount")


def test_the_compiled_query_drops_the_inputs_it_only_read(tmp_path: Path) -> None:
    definitions = project_with(tmp_path, TWO_VIEWS).validate()
    spine = Spine(exp.to_table("labels"), columns=("customer_id", "store_id", "event_timestamp", "basket"))
    sql = compile_training_query(definitions, spine=spine, dialect="duckdb", service="scoring").sql
    final = sql.rsplit("\nSELECT", 1)[1]
    assert 'AS "_fsql_in__' not in final  # read inside the derived expressions, never output
    assert '"_fsql_in_1"' in final
    assert 'AS "ratio"' in final and 'AS "big"' in final and 'CAST("spine"."basket" AS DOUBLE)' in final


def test_request_errors(tmp_path: Path) -> None:
    definitions = project_with(tmp_path, TWO_VIEWS).validate()
    with pytest.raises(CompileError, match=r"request field 'basket' is double in derived view 'mix' but bigint"):
        resolve_features(definitions, features=["mix:big", "other"])
    spine = Spine(exp.to_table("labels"), columns=("customer_id", "store_id", "event_timestamp"))
    with pytest.raises(CompileError, match=r"reads request field\(s\) basket, which the spine lacks"):
        compile_training_query(definitions, spine=spine, dialect="postgres", service="scoring")
    with pytest.raises(
        CompileError, match=r"derived view 'mix' has no feature 'nope'. Its features: ratio, orders_plus, wait, big."
    ):
        resolve_features(definitions, features=["mix:nope"])


def test_an_ambiguous_name_says_to_qualify_it(tmp_path: Path) -> None:
    text = """
derived_views:
  - name: amb
    inputs: [customer_orders]
    request: {last_amount: double}
    features:
      - {name: x, expr: "last_amount + 1"}
"""
    with pytest.raises(fsql.DefinitionError, match=r"'last_amount' is in view 'customer_orders' and the request"):
        project_with(tmp_path, text).validate()


def test_a_derived_view_cannot_read_a_derived_view(tmp_path: Path) -> None:
    text = (
        TWO_VIEWS
        + """
  - name: nested
    inputs: [mix:ratio]
    features:
      - {name: y, expr: "ratio * 2"}
"""
    )
    text = text.replace("feature_services:\n  - name: scoring\n    features: [mix:ratio, mix:big]\n", "")
    text += "feature_services: []\n"
    with pytest.raises(fsql.DefinitionError, match=r"names no feature view \(a derived view reads no derived view\)"):
        project_with(tmp_path, text).validate()


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("last_amount * now()", "is not deterministic"),
        ("current_timestamp", "current_timestamp() is not deterministic"),
        ("seconds_between(last_amount, last_amount)", "seconds_between() takes date or timestamp or timestamptz"),
        ("seconds_between(last_amount)", "takes exactly two arguments"),
        ("CAST(last_amount AS bigint)", "CAST is outside the expression language"),
        ("(SELECT 1)", "write one expression, not a query"),
        ("is_big + 1", "'+' takes numbers, but 'is_big' is boolean"),
        ("CASE WHEN last_amount THEN 1 END", "a WHEN condition takes boolean"),
        ("coalesce(last_amount, 'x')", "coalesce() mixes types"),
        ("NULL", "always NULL, so its type is unknown"),
        ("last_amount +", "cannot parse the expression"),
    ],
)
def test_expressions_outside_the_checked_subset_are_refused(tmp_path: Path, expression: str, words: str) -> None:
    text = f"""
derived_views:
  - name: bad
    inputs: [customer_orders]
    features:
      - {{name: x, expr: {expression!r}}}
"""
    with pytest.raises(fsql.DefinitionError) as raised:
        project_with(tmp_path, text).validate()
    assert words in str(raised.value)
    assert str(raised.value).startswith("definitions/derived.yml:6:")
