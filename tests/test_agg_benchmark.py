"""The windowed-aggregates benchmark's correctness check, at a tiny scale, so the benchmark cannot rot.

benchmarks/aggregates.py times its sides only after `check` found every hand-written shape
and the pandas code equal to fsql's training set row for row; this runs that check.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import agg_workloads as w
import aggregates


@pytest.mark.parametrize("distribution", sorted(w.DISTRIBUTIONS))
def test_hand_written_shapes_and_pandas_agree_with_fsql(tmp_path: Path, distribution: str) -> None:
    data = w.generate(tmp_path / "data", w.DISTRIBUTIONS[distribution], scale=0.001)
    project = w.write_project(tmp_path / "project", data)
    results = aggregates.check(project, data)
    assert set(results) == {"fsql", "fsql_1w", *w.HAND_SHAPES, *w.EXACT_FUNCTIONS, "range_join_exact", "pandas"}
    assert results["fsql"].num_rows == data.spine_rows
    counts = results["fsql"].column("n_1h").to_pylist() + results["fsql"].column("n_30d").to_pylist()
    assert 0 in counts and max(counts) > 0  # empty windows and full ones both occur


def test_the_check_sees_an_event_at_the_spine_time_counted(tmp_path: Path) -> None:
    """A closed upper end (`e <= t`) must be caught: 20 % of spine rows sit exactly on an event."""
    data = w.generate(tmp_path / "data", w.DISTRIBUTIONS["sparse"], scale=0.001)
    project = w.write_project(tmp_path / "project", data)
    ours = w.run_fsql(project, data, w.SERVICES["fsql"])
    closed = w.range_join_sql(data).replace("e.event_ts < s.event_timestamp", "e.event_ts <= s.event_timestamp")
    problems = aggregates.differences(ours, w.run_sql(closed), w.feature_names())
    assert any(p.startswith("n_1h:") for p in problems)


def test_floats_compare_to_a_relative_tolerance() -> None:
    table = pa.table({"row_id": [1], "user_id": [1], "event_timestamp": [0], "x": [1.0]})
    assert aggregates.differences(table, table.set_column(3, "x", pa.array([1.0 + 1e-12])), ["x"]) == []
    assert aggregates.differences(table, table.set_column(3, "x", pa.array([1.0 + 1e-6])), ["x"]) != []
    assert aggregates.differences(table, table.set_column(3, "x", pa.array([None], pa.float64())), ["x"]) != []
