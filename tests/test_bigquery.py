"""The BigQuery engine: its URL, and (with FSQL_TEST_BIGQUERY_URL) the PIT bank through the client.

No BigQuery is reachable from here. The window strategy's BigQuery SQL is proven by
tests/test_window_strategy.py (transpiled to DuckDB and executed); these tests run the
client path of fsql (load a spine, submit SQL, read arrow) against whatever endpoint
FSQL_TEST_BIGQUERY_URL names: a real project, or the local `bqemulator`, whose SQL
semantics are DuckDB's after sqlglot's transpile, not BigQuery's own.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import test_pit_property as prop
import test_pit_rules
from hypothesis import given, settings
from hypothesis import strategies as st
from pit_harness import PitCase, PitResult, View, run_pit
from pit_window import bigquery_url, registered, rule_tests, run_bigquery

from fsql.engines import ENGINES, open_engine
from fsql.engines.bigquery import BigQueryEngine, connection_settings
from fsql.errors import ProjectError
from fsql.project import Target

EMULATOR = "bigquery://demo?api_endpoint=http://127.0.0.1:1"  # never contacted by these tests


def test_url_gives_project_dataset_and_location() -> None:
    settings = connection_settings("bigquery://my-project/features?location=EU")
    assert settings == {"project": "my-project", "dataset": "features", "location": "EU", "api_endpoint": None}
    assert connection_settings("bigquery://my-project")["dataset"] is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bigquery://", "names no project"),
        ("bigquery://p/d?region=EU", r"unknown parameter\(s\) region; known: location, api_endpoint"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        connection_settings(url)


def test_a_bigquery_target_opens_the_bigquery_engine(tmp_path: Path) -> None:
    pytest.importorskip("google.cloud.bigquery")
    assert ENGINES["bigquery"] == "fsql.engines.bigquery:BigQueryEngine"
    engine = open_engine(Target("bq", EMULATOR, "bigquery"), tmp_path)
    try:
        assert isinstance(engine, BigQueryEngine) and engine.dialect == "bigquery"
    finally:
        engine.close()


def test_an_arrow_spine_needs_a_dataset_in_the_url(tmp_path: Path) -> None:
    pytest.importorskip("google.cloud.bigquery")
    engine = BigQueryEngine(EMULATOR, root=tmp_path)
    with pytest.raises(ProjectError, match=r"add a dataset to the target URL \(bigquery://demo/<dataset>\)"):
        engine.register_arrow("spine", pa.table({"a": [1]}))
    engine.close()


# --- the PIT bank through the client (FSQL_TEST_BIGQUERY_URL) -----------------------------------

# BigQuery has one integer type: an int32 spine column comes back as INT64 (int64 in arrow).
NOT_ON_BIGQUERY = {"test_spine_label_columns_pass_through_unchanged": "BigQuery has no 32-bit integer type"}

_RULES = rule_tests(
    test_pit_rules, marks={n: [pytest.mark.xfail(reason=r, strict=True)] for n, r in NOT_ON_BIGQUERY.items()}
)
globals().update({name: pytest.mark.bigquery(test) for name, test in _RULES.items()})


@pytest.fixture
def run(tmp_path: Path) -> Any:
    counter = itertools.count()

    def go(case: PitCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        with registered("bigquery", run_bigquery):
            return run_pit("bigquery", tmp_path / f"project{next(counter)}", case, spine, **kwargs)

    return go


@pytest.mark.bigquery
@settings(prop.PROPERTY_SETTINGS, max_examples=15)
@given(first=prop.views(0), second=prop.views(1), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_two_views_through_the_client(
    first: View, second: View, spine: pa.Table, full_feature_names: bool
) -> None:
    bigquery_url()  # skips without an endpoint
    with registered("bigquery", run_bigquery):
        prop.check_engine_against_oracle("bigquery", PitCase([first, second]), spine, full_feature_names)
