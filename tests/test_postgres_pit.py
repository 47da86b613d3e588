"""The lateral strategy on a real Postgres: every PIT rule and property, against the oracle.

The rule tests are those of tests/test_pit_rules.py and the properties those of
tests/test_pit_property.py, collected here again with this module's runner; the example
project's training set on Postgres equals DuckDB's.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_pit_property as prop
import test_pit_rules
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from online_helpers import online_url
from pit_harness import PitCase, PitResult, View, mismatches, run_pit
from pit_postgres import drop_schema, load_tables, postgres_runner
from pit_window import registered, rule_tests

import fsql

ENGINE = "postgres"
POSTGRES_SETTINGS = settings(prop.PROPERTY_SETTINGS, max_examples=40)

globals().update(rule_tests(test_pit_rules))
# A spine file is read by engines that scan files (DuckDB, Spark), refused here: Postgres runs the other forms.
test_spine_forms_give_the_same_result.pytestmark = [  # type: ignore[name-defined]  # noqa: F821
    pytest.mark.parametrize("spine_form", [f for f in test_pit_rules.SPINE_FORMS if f != "parquet"])
]


@pytest.fixture
def run(tmp_path: Path, postgres_dsn: str) -> Any:
    counter = itertools.count()

    def go(case: PitCase, spine: pa.Table, **kwargs: Any) -> PitResult:
        with registered(ENGINE, postgres_runner(postgres_dsn)):
            return run_pit(ENGINE, tmp_path / f"project{next(counter)}", case, spine, **kwargs)

    return go


def check(dsn: str, case: PitCase, spine: pa.Table, full_feature_names: bool) -> None:
    # Postgres text cannot hold NUL characters (the engine says so; see the test below).
    assume(not any("\x00" in str(v) for column in spine.columns for v in column.to_pylist() if isinstance(v, str)))
    with registered(ENGINE, postgres_runner(dsn)), tempfile.TemporaryDirectory(prefix="fsql-pg-") as directory:
        result = run_pit(ENGINE, Path(directory), case, spine, full_feature_names=full_feature_names)
    problems = mismatches(result, case, spine, full_feature_names=full_feature_names)
    assert not problems, "\n".join(problems) + "\n" + result.sql


@pytest.mark.slow
@POSTGRES_SETTINGS
@given(view=prop.views(0), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_one_view(postgres_dsn: str, view: View, spine: pa.Table, full_feature_names: bool) -> None:
    check(postgres_dsn, PitCase([view]), spine, full_feature_names)


@pytest.mark.slow
@POSTGRES_SETTINGS
@given(first=prop.views(0), second=prop.views(1), spine=prop.spines(), full_feature_names=st.booleans())
def test_property_two_views(
    postgres_dsn: str, first: View, second: View, spine: pa.Table, full_feature_names: bool
) -> None:
    check(postgres_dsn, PitCase([first, second]), spine, full_feature_names)


@pytest.mark.slow
@POSTGRES_SETTINGS
@given(case=prop.dense_ties())
def test_property_dense_ties(postgres_dsn: str, case: tuple[View, pa.Table]) -> None:
    view, spine = case
    check(postgres_dsn, PitCase([view]), spine, False)


def file_sources_as_tables(seeded: Path, dsn: str, schema: str) -> None:
    """Load the example's file sources into Postgres tables, as DuckDB reads them."""
    import duckdb

    tables = {}
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        for source in fsql.load_project(seeded).definitions.sources.values():
            if source.kind.value == "file":
                scan = connection.sql(
                    "SELECT * FROM read_csv(?)" if source.file_format == "csv" else "SELECT * FROM read_parquet(?)",
                    params=[str(seeded / source.location)],
                )
                tables[source.name] = scan.to_arrow_table()
    drop_schema(dsn, schema)
    load_tables(dsn, schema, tables)


def postgres_example(seeded: Path, root: Path, dsn: str, schema: str) -> Path:
    """The example project, its definitions unchanged (DuckDB SQL), on a Postgres offline target."""
    shutil.copytree(seeded, root, ignore=shutil.ignore_patterns("target"))
    for source in fsql.load_project(seeded).definitions.sources.values():
        if source.kind.value != "file":
            continue
        for path in (root / "definitions").glob("*.yml"):
            path.write_text(path.read_text().replace(f"path: {source.location}", f"table: {schema}.{source.name}"))
    profile = f"rides:\n  target: pg\n  outputs:\n    pg:\n      offline: '{online_url(dsn)}'\n"
    (root / "profiles.yml").write_text(profile)
    return root


@pytest.mark.parametrize("service", ["ride_acceptance", "driver_quality"])
def test_example_project_on_postgres_equals_duckdb(
    seeded_example: Path, tmp_path: Path, postgres_dsn: str, service: str
) -> None:
    """Definitions written in DuckDB SQL, transpiled by sqlglot: `/` stays a true division."""
    schema = f"fsql_example_{service}"
    file_sources_as_tables(seeded_example, postgres_dsn, schema)
    try:
        root = postgres_example(seeded_example, tmp_path / "example", postgres_dsn, schema)
        spine = pq.read_table(seeded_example / "data" / "ride_requests.parquet").slice(0, 1500)
        expected = fsql.load_project(seeded_example).training_set(service=service, spine=spine)
        got = fsql.load_project(root).training_set(service=service, spine=spine)
    finally:
        drop_schema(postgres_dsn, schema)
    assert got.column_names == expected.column_names
    by_id = {r["request_id"]: r for r in got.to_pylist()}
    for row in expected.to_pylist():
        other = by_id[row["request_id"]]
        for name, value in row.items():
            if isinstance(value, float) and other[name] is not None:
                assert other[name] == pytest.approx(value, rel=1e-12), (name, row, other)
            else:
                assert other[name] == value, (name, row, other)


def test_a_spine_value_postgres_cannot_hold_is_a_clear_error(tmp_path: Path, postgres_dsn: str) -> None:
    from fsql.engines.postgres import PostgresEngine
    from fsql.errors import ExecutionError

    engine = PostgresEngine(online_url(postgres_dsn), root=tmp_path)
    try:
        with pytest.raises(
            ExecutionError,
            match=r"^the spine: column 'label' holds a NUL byte \(\\x00\) in 1 row, which Postgres text cannot",
        ):
            engine.register_arrow("_fsql_spine", pa.table({"label": ["a\x00b"]}))
    finally:
        engine.close()
