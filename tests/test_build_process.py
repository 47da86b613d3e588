"""What a fresh `fsql build` process loads: a build must not pay for pandas (about 0.35 s to
import here), which pyarrow pulls in whenever it converts a Python object."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from online_helpers import t, write_project, write_rows

pytestmark = pytest.mark.postgres

BUILD_AND_REPORT = """
import sys
import fsql
from fsql.build import BuildOptions
from datetime import datetime, UTC
result = fsql.load_project(sys.argv[1]).build(BuildOptions(end=datetime.fromisoformat(sys.argv[2])))
assert all(node.status == "success" for node in result.nodes), [(n.view, n.message) for n in result.nodes]
print("pandas" in sys.modules)
"""


@pytest.mark.parametrize(
    "rows", [[(1, t(1), t(1, 1), 0.5, "a"), (2, t(2), None, None, "x")], []], ids=["rows", "empty"]
)
def test_a_build_does_not_import_pandas(tmp_path: Path, postgres_dsn: str, postgres_schema: str, rows: list) -> None:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, rows)
    for end in (t(3), t(4)):  # a first load, then an incremental run
        done = subprocess.run(
            [sys.executable, "-c", BUILD_AND_REPORT, str(root), end.isoformat()], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"


def test_a_naive_build_end_is_utc(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    """Naive times are UTC everywhere in fsql; a naive `end` once failed every view with a TypeError."""
    import fsql
    from fsql.build import BuildOptions

    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, [(1, t(1), None, 0.5, "a")])
    with fsql.load_project(root) as project:
        result = project.build(BuildOptions(end=t(3)))
    (node,) = result.nodes
    assert (node.view, node.status, node.rows_written) == ("driver_stats", "success", 1), node.message
    assert node.window is not None and node.window[1] == t(3).replace(tzinfo=UTC)


def test_python_rows_are_to_pylist_with_utc_instants() -> None:
    from datetime import datetime

    import pyarrow as pa

    from fsql.engines import python_rows

    moments = [datetime(2024, 3, 31, 1, 30, tzinfo=UTC), None, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    table = pa.table(
        {
            "at": pa.array(moments, pa.timestamp("us", tz="UTC")),
            "paris": pa.array(moments, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz="Europe/Paris")),
            "naive": pa.array([m and m.replace(tzinfo=None) for m in moments], pa.timestamp("us")),
            "n": pa.array([1, None, 3]),
        }
    )
    rows = python_rows(table)
    assert rows == table.to_pylist()  # aware datetimes compare as instants
    assert [row["paris"] for row in rows] == moments and rows[0]["paris"].tzinfo is UTC
    assert rows[0]["naive"].tzinfo is None
