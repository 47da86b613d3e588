"""Edge values on the online path: NaN and infinities printed by `fsql get`, keys out of
their type's range, NUL bytes in text features."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from online_helpers import DEFINITIONS, build, state, stored, t, write_project, write_rows
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.errors import CompileError, ProjectError


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema)


def get(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--project-dir", str(project), "get", "--features", "driver_stats", *args])


def test_get_prints_nan_and_infinities_as_null_in_valid_json(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    nan, inf = float("nan"), float("inf")
    write_rows(project, [(1, t(2), None, nan, "a"), (2, t(2), None, inf, "b"), (3, t(2), None, -inf, "c")])
    build(project, t(3))
    rates = [row[0] for row in stored(postgres_dsn, postgres_schema).values()]
    assert math.isnan(rates[0]) and rates[1:] == [inf, -inf]  # stored as they are
    entities = [arg for key in (1, 2, 3) for arg in ("--entity", f"driver_id={key}")]
    result = get(project, *entities, "--now", t(2, 1).isoformat())
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert [v["rate"] for v in values] == [None, None, None]
    assert [v["label"] for v in values] == ["a", "b", "c"]


BIGINT_MAX, INT32_MAX = 2**63 - 1, 2**31 - 1


@pytest.mark.parametrize(
    ("key_type", "value", "bounds"),
    [
        ("bigint", BIGINT_MAX + 1, f"-{BIGINT_MAX + 1} to {BIGINT_MAX}"),
        ("bigint", -BIGINT_MAX - 2, f"-{BIGINT_MAX + 1} to {BIGINT_MAX}"),
        ("int32", INT32_MAX + 1, f"-{INT32_MAX + 1} to {INT32_MAX}"),
        ("int32", -INT32_MAX - 2, f"-{INT32_MAX + 1} to {INT32_MAX}"),
    ],
    ids=["bigint-over", "bigint-under", "int32-over", "int32-under"],
)
def test_a_key_out_of_its_types_range_is_an_input_error_before_any_query(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, key_type: str, value: int, bounds: str
) -> None:
    definitions = DEFINITIONS.replace("type: bigint}]", f"type: {key_type}}}]")
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, definitions)
    project_ = fsql.load_project(project)
    # Nothing is built: a query would fail on the missing table, so the error comes before any.
    with pytest.raises(ProjectError, match="have no online table"):
        project_.get_online_features([{"driver_id": 1}], features=["driver_stats"])
    expected = f"entity row 2: key 'driver_id' is {key_type}, which holds {bounds}; {value} is out of that range"
    with pytest.raises(CompileError, match=f"^{re.escape(expected)}"):
        project_.get_online_features([{"driver_id": 1}, {"driver_id": value}], features=["driver_stats"])
    result = get(project, "--entity", f"driver_id={value}")
    assert result.exit_code == 2, result.output
    assert "unexpected error" not in result.stderr
    assert (
        f"--entity 'driver_id={value}': {value} is out of range for 'driver_id', a {key_type} ({bounds})"
        in " ".join(result.stderr.split())
    )


def test_a_nul_byte_in_a_text_feature_refuses_the_run_naming_the_rows_and_writes_nothing(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    rows = [(key, t(2), None, 0.5, f"a\x00{key}" if key % 2 else "ok") for key in range(1, 10)]
    write_rows(project, rows)
    result = build(project, t(3))
    node = result.nodes[0]
    assert (node.view, node.status) == ("driver_stats", "error")
    assert node.message == (
        "feature view 'driver_stats': column 'label' holds a NUL byte (\\x00) in 5 rows, which Postgres text "
        "cannot store (first: driver_id=1; driver_id=3; driver_id=5); nothing was written. Remove them at the "
        "source, or strip them in SQL (a feature's expr, a spine's SELECT): replace(<expression>, chr(0), '')"
    )
    assert state(postgres_dsn, postgres_schema) is None  # the run's transaction was rolled back
    with_replace = DEFINITIONS.replace(
        "{name: label, type: string}", "{name: label, type: string, expr: \"replace(label, chr(0), '')\"}"
    )
    (project / "definitions" / "defs.yml").write_text(with_replace)
    assert build(project, t(3)).nodes[0].status == "success"
    assert stored(postgres_dsn, postgres_schema)[1][1] == "a1"
