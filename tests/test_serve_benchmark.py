"""benchmarks/serve.py's answer check and its RESULTS.md writer, so the benchmark cannot rot.

The serve benchmark times Feast's server only after `check_equal` found its answers equal to
fsql's. Feast lives in a venv of its own that the test suite does not have, so here the check
runs fsql's server against itself (equal) and against the benchmark's bare HTTP floor, which
answers in the same shape with other values (the check must refuse it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import serve
from online_helpers import online_url


@pytest.mark.postgres
def test_the_answer_check_passes_equal_servers_and_catches_a_different_value(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = serve.make_project(tmp_path / "p", online_url(postgres_dsn), postgres_schema, 50)
    ours, ours_port = serve.start_fsql(root, "cli")
    other, other_port = serve.start_fsql(root, "bare")
    try:
        samples = [[3], [1, 50, 51]]  # 51: no such entity, NOT_FOUND on every view
        assert serve.check_equal(ours_port, ours_port, samples) == 4
        answer = serve.post(ours_port, serve.body([1, 51]))
        statuses = {name: column[1] for name, column in serve.columns(answer).items()}
        assert statuses["rate"] == ["PRESENT", "NOT_FOUND"]
        with pytest.raises(AssertionError, match="column 'rate' differs"):
            serve.check_equal(ours_port, other_port, [[3]])
    finally:
        serve.stop(ours)
        serve.stop(other)


def test_results_replace_the_old_serve_section_then_their_own(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# results\n\n## fsql serve (old)\n\n| old | table |\n<!-- overheads.py: begin -->\nkept\n")
    serve.write_section(results, f"{serve.BEGIN}\n## fsql serve: first\n{serve.END}")
    assert results.read_text() == (
        f"# results\n\n{serve.BEGIN}\n## fsql serve: first\n{serve.END}\n<!-- overheads.py: begin -->\nkept\n"
    )
    serve.write_section(results, f"{serve.BEGIN}\n## fsql serve: second\n{serve.END}")
    text = results.read_text()
    assert "second" in text and "first" not in text and "old" not in text and text.endswith("kept\n")
