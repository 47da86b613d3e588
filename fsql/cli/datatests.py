"""Rendering `fsql test`: a line per test as it finishes, a summary table, the failures, the exit code."""

from __future__ import annotations

from datetime import datetime

import typer

from fsql import console
from fsql.api import Project
from fsql.datatests.run import DataTestResult, run_tests, select_tests


def run_data_tests(project: Project, *, select: str | None, exclude: str | None, at: datetime) -> None:
    """Run the selected tests; exit 1 when one fails at severity error or cannot run."""
    from rich.table import Table

    if not select_tests(project.definitions, select=select, exclude=exclude):
        what = f"the selection '{select}'" if select else "the project"
        console.warning(
            f"nothing to do: {what} has no data tests" + (f" (minus --exclude '{exclude}')" if exclude else "")
        )
        return

    def progress(result: DataTestResult) -> None:
        console.info(f"{result.status:>5}  {result.test.name}  ({result.seconds:.2f} s)")

    run = run_tests(project, select=select, exclude=exclude, at=at, on_result=progress)
    summary = Table("test", "on", "severity", "status", "failures", "seconds", title="fsql test", title_justify="left")
    for result in run.results:
        test = result.test
        on = f"{test.node_kind} {test.node}" + (f".{test.feature}" if test.feature else "")
        summary.add_row(test.name, on, test.severity, result.status, f"{result.failures:,}", f"{result.seconds:.2f}")
    console.err.print(summary)
    counts = {status: sum(r.status == status for r in run.results) for status in ("pass", "warn", "fail", "error")}
    said = ", ".join(f"{n} {status}" for status, n in counts.items())
    console.info(f"done in {run.seconds:.2f} s: {said}; results in {project.config.target_dir / 'run_results.json'}")
    for result in run.results:
        if result.status == "warn":
            console.warning(f"{result.test.name} ({result.test.where}): {result.message}")
    for result in run.results:
        if result.failed:
            console.error(f"{result.test.name} ({result.test.where}): {result.message}")
    if run.failed:
        raise typer.Exit(1)
