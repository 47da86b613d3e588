"""Edge values on the online path: NaN and infinities printed by `fsql get`, keys out of
their type's range, NUL bytes in text features."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from online_helpers import build, stored, t, write_project, write_rows
from typer.testing import CliRunner

from fsql.cli import app


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
