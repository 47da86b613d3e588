"""Run data tests on the offline engine and judge their results: `fsql test`, and build's gate.

One query per test (see `fsql.datatests.sql`); its compiled SQL is written to
target/compiled/<dialect>/tests/<name>.sql before it runs. A test's status is dbt's:
pass, warn (it failed at severity warn, or a freshness test is past warn_after), fail (at
severity error) or error (its query could not run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsql import artifacts
from fsql.engines import OfflineEngine, open_engine, python_rows
from fsql.errors import FsqlError
from fsql.graph import select_nodes
from fsql.spec import Definitions

from .model import DataTest
from .sql import FAILURES, LATEST, compile_test

if TYPE_CHECKING:
    from fsql.api import Project

_NODE_KINDS = {"source": "source", "view": "view"}


@dataclass
class DataTestResult:
    test: DataTest
    status: str  # pass | warn | fail | error
    failures: int = 0
    message: str = ""
    seconds: float = 0.0
    compiled_path: Path | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether it stops what depends on it: an error-level failure, or a query that could not run."""
        return self.status in ("fail", "error")

    def as_json(self) -> dict[str, Any]:
        test = self.test
        return {
            "unique_id": test.unique_id,
            "status": self.status,
            "failures": self.failures,
            "message": self.message,
            "execution_time": round(self.seconds, 4),
            "compiled_path": str(self.compiled_path) if self.compiled_path else None,
            "test": {
                "kind": test.kind,
                "attached_node": test.node_id,
                "feature": test.feature,
                "columns": list(test.columns),
                "severity": test.severity,
                "defined_at": str(test.where),
            },
            "samples": self.samples,
        }


@dataclass
class DataTestRun:
    results: list[DataTestResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)


def project_tests(definitions: Definitions) -> list[DataTest]:
    """Every test of the project, sources first, each with a name unique in the project."""
    declared = [
        *(t for s in definitions.sources.values() for t in s.tests),
        *(t for v in definitions.feature_views.values() for t in v.tests),
    ]
    seen: dict[str, int] = {}
    named = []
    for test in declared:
        seen[test.name] = seen.get(test.name, 0) + 1
        named.append(test if seen[test.name] == 1 else replace(test, name=f"{test.name}_{seen[test.name]}"))
    return named


def select_tests(definitions: Definitions, *, select: str | None = None, exclude: str | None = None) -> list[DataTest]:
    """The tests of the sources and views a dbt-style selection picks (see `fsql.graph.select_nodes`)."""
    nodes = select_nodes(definitions, select=select, exclude=exclude, kinds=("source", "view"))
    return [t for t in project_tests(definitions) if (_NODE_KINDS[t.node_kind], t.node) in nodes]


def run_tests(
    project: Project,
    *,
    select: str | None = None,
    exclude: str | None = None,
    at: datetime | None = None,
    on_result: Callable[[DataTestResult], None] | None = None,
) -> DataTestRun:
    """Run the selected tests on the target's offline engine and write target/run_results.json.

    Args:
        at: freshness is measured against this instant (default now, as dbt does).
    """
    started = time.perf_counter()
    definitions = project.validate()
    tests = select_tests(definitions, select=select, exclude=exclude)
    run = DataTestRun()
    if tests:
        engine = open_engine(project.config.target, project.config.root)
        try:
            for test in tests:
                result = run_test(project, test, engine, at=at or datetime.now(UTC))
                run.results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            engine.close()
    run.seconds = time.perf_counter() - started
    artifacts.write_run_results(project.config.target_dir, [r.as_json() for r in run.results], run.seconds)
    return run


def run_test(project: Project, test: DataTest, engine: OfflineEngine, *, at: datetime) -> DataTestResult:
    """Compile one test, write its SQL under target/compiled/, run it, and judge the rows it returns."""
    started = time.perf_counter()
    config, definitions = project.config, project.definitions
    path: Path | None = None
    try:
        shown = compile_test(definitions, test, dialect=engine.dialect, at=at)
        written = artifacts.write_sql(config.target_dir, "compiled", engine.dialect, f"tests/{test.name}", shown)
        path = written.relative_to(config.root) if written.is_relative_to(config.root) else written
        sql = compile_test(definitions, test, dialect=engine.dialect, at=at, file_root=config.root)
        rows = python_rows(engine.query_arrow(sql, sql_path=path, node=test.unique_id))
    except FsqlError as exc:
        return DataTestResult(
            test, "error", message=str(exc), seconds=time.perf_counter() - started, compiled_path=path
        )
    except Exception as exc:  # a driver error the engine did not wrap: report it on the test, go on
        message = f"{type(exc).__name__}: {str(exc).strip()}"
        return DataTestResult(test, "error", message=message, seconds=time.perf_counter() - started, compiled_path=path)
    result = _freshness(test, rows, at) if test.kind == "freshness" else _counted(test, rows)
    result.seconds, result.compiled_path = time.perf_counter() - started, path
    return result


def _counted(test: DataTest, rows: list[dict[str, Any]]) -> DataTestResult:
    failures = int(rows[0][FAILURES]) if rows else 0
    samples = [{k: v for k, v in row.items() if k != FAILURES} for row in rows]
    if not failures:
        return DataTestResult(test, "pass")
    status = "fail" if test.severity == "error" else "warn"
    return DataTestResult(test, status, failures, _failure_message(test, failures, samples), samples=samples)


def _failure_message(test: DataTest, failures: int, samples: list[dict[str, Any]]) -> str:
    columns = ", ".join(test.columns)
    rows = f"{failures:,} row{'s' if failures != 1 else ''}"
    if test.kind == "not_null":
        return f"{rows} with NULL {' or '.join(test.columns)}"
    if test.kind == "unique":
        groups = f"{failures:,} value{'s' if failures != 1 else ''} of ({columns})"
        return f"{groups} on more than one row, e.g. {_first(samples)}"
    if test.kind == "accepted_values":
        return f"{rows} with {columns} not in {list(test.values)}, e.g. {_first(samples, test.columns)}"
    if test.kind == "accepted_range":
        return f"{rows} with {columns} not {_wanted(test)}, e.g. {_first(samples, test.columns)}"
    if test.kind == "row_count":
        count = int(samples[0]["row_count"]) if samples else 0
        return f"{count:,} row{'s' if count != 1 else ''}, expected {_wanted(test)}"
    return f"{rows} where NOT ({test.expression})"


def _wanted(test: DataTest) -> str:
    """The bounds as written: '>= 0 and <= 1', '> 0' (not inclusive), '>= 1'."""
    low, high = (">=", "<=") if test.inclusive else (">", "<")
    bounds = [f"{op} {value}" for op, value in ((low, test.min), (high, test.max)) if value is not None]
    return " and ".join(bounds)


def _first(samples: list[dict[str, Any]], columns: Iterable[str] | None = None) -> str:
    if not samples:
        return "(no sample)"
    row = samples[0] if columns is None else {c: samples[0].get(c) for c in columns}
    return ", ".join(f"{k}={_shown(v)}" for k, v in row.items())


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _freshness(test: DataTest, rows: list[dict[str, Any]], at: datetime) -> DataTestResult:
    latest = rows[0][LATEST] if rows else None
    limits = ", ".join(
        f"{label} {d}" for label, d in (("warn after", test.warn_after), ("error after", test.error_after)) if d
    )
    level: str | None
    if latest is None:
        level = "error" if test.error_after else "warn"
        message = f"no rows at or before {_utc(at)} ({limits})"
    else:
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        age = at - latest
        level = _stale_level(test, age)
        message = f"newest event {_utc(latest)} is {_age(age)} old at {_utc(at)} ({limits})"
    if level is None:
        return DataTestResult(test, "pass", message=message)
    status = "fail" if level == "error" and test.severity == "error" else "warn"
    return DataTestResult(test, status, 1, message, samples=[{LATEST: latest}])


def _stale_level(test: DataTest, age: timedelta) -> str | None:
    if test.error_after is not None and age > timedelta(seconds=test.error_after.seconds):
        return "error"
    if test.warn_after is not None and age > timedelta(seconds=test.warn_after.seconds):
        return "warn"
    return None


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{days}d {hours}h {rest // 60}m" if days else f"{hours}h {rest // 60}m"
    return f"-{text}" if seconds < 0 else text
