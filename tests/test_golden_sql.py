"""Golden SQL: the example project's compiled queries, per dialect, compared exactly.

Review a golden diff like code. `pytest --update-golden` rewrites the files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fsql
from fsql.errors import CompileError

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"

# (case, dialect, request): a service, or a feature list with a spine.
CASES = [
    ("example", "duckdb", {"service": "ride_acceptance"}),
    ("example", "duckdb", {"service": "driver_quality"}),
    (
        "example",
        "duckdb",
        {
            "features": ["zone_demand:zone_pressure", "rider_driver_affinity"],
            "spine": "SELECT rider_id, driver_id, zone_id, requested_at AS ts FROM analytics.requests",
            "spine_timestamp": "ts",
        },
    ),
]
# A service with a derived view (request fields from spine columns).
CASES.append(("example", "duckdb", {"service": "ride_offer_scoring"}))
# The window strategy: the same requests for BigQuery and Spark.
CASES += [
    (name, window, request) for window in ("bigquery", "spark") for name, d, request in list(CASES) if d == "duckdb"
]


CASES.append(("example", "postgres", {"service": "ride_offer_scoring"}))
# DuckDB's narrow asof shape (each view matched to the numbered spine, stitched back by row id),
# which the example's services are too narrow to choose: forced, beside aggregate and derived views.
NARROW = "example_narrow"
CASES.append((NARROW, "duckdb", {"service": "ride_acceptance"}))
CASES.append((NARROW, "duckdb", {"service": "ride_offer_scoring"}))


def _case_id(case: tuple[str, str, dict]) -> str:
    name, dialect, request = case
    what = request.get("service") or "features"
    return f"{dialect}-{name}-{what}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_golden_sql(
    case: tuple[str, str, dict], update_golden: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, dialect, request = case
    if name == NARROW:
        from fsql.compile.asof import AsofStrategy

        monkeypatch.setattr(AsofStrategy, "narrow_from_carried", 0)
    project = fsql.load_project(REPO, data_checks=False)  # SQL text only: no data needed
    project.config = _with_target_dir(project.config, tmp_path)
    compiled, _ = project.compile(dialect=dialect, **request)
    path = GOLDEN / name / dialect / f"{compiled.name}.sql"
    if update_golden or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(compiled.sql)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {path}; review it and rerun")
    assert compiled.sql == path.read_text(), f"{path} differs: review, then rerun with --update-golden"


def test_compiled_sql_is_written_under_target(tmp_path: Path) -> None:
    project = fsql.load_project(REPO, data_checks=False)  # SQL text only: no data needed
    project.config = _with_target_dir(project.config, tmp_path)
    compiled, path = project.compile(service="driver_quality")
    assert path == tmp_path / "compiled" / "duckdb" / "driver_quality.sql"
    assert path.read_text() == compiled.sql


def test_a_dialect_without_a_strategy_is_refused_by_name(tmp_path: Path) -> None:
    project = fsql.load_project(REPO, data_checks=False)  # SQL text only: no data needed
    project.config = _with_target_dir(project.config, tmp_path)
    with pytest.raises(CompileError, match=r"no point-in-time strategy for dialect 'oracle' yet; supported: "):
        project.compile(service="driver_quality", dialect="oracle")


def _with_target_dir(config, target_dir: Path):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(config, target_dir=target_dir)
