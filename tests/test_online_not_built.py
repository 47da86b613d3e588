"""A lookup before `fsql build` made a view's online table: one clear error naming the view, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from online_helpers import DEFINITIONS, build, t, write_project, write_rows
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.errors import ProjectError

TWO_VIEWS = (
    DEFINITIONS
    + """
  - name: driver_labels
    entities: [driver]
    source: stats
    online: true
    features:
      - {name: label, type: string}
"""
)


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_VIEWS)
    write_rows(root, [(1, t(2), None, 0.2, "a")])
    return root


def test_get_before_any_build_names_the_views_and_says_to_build(project: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "--project-dir",
            str(project),
            "get",
            "--features",
            "driver_stats:rate,driver_labels:label",
            "-e",
            "driver_id=1",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "unexpected error" not in result.stderr
    assert "'driver_stats'" in result.stderr and "'driver_labels'" in result.stderr
    assert "fsql build" in result.stderr
    assert result.stderr.count("Error:") == 1


def test_a_lookup_names_only_the_view_not_built_yet(project: Path) -> None:
    build(project, t(3), select="driver_stats")
    with fsql.load_project(project).online_store() as store:
        with pytest.raises(ProjectError) as raised:
            store.get_online_features([{"driver_id": 1}], features=["driver_stats:rate", "driver_labels:label"])
        message = str(raised.value)
        assert "'driver_labels'" in message and "'driver_stats'" not in message
        assert "fsql build --select driver_labels" in message
        # the store still works for what was built, on the same pool
        rows = store.get_online_features([{"driver_id": 1}], features=["driver_stats:rate"], now=t(2, 1))
    assert rows == [{"driver_id": 1, "rate": 0.2}]
