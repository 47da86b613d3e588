"""`fsql build`'s hook: the data tests of a view run before it is materialized.

A failing error-level test (or one whose query could not run) stops the view; a warning
does not. A source's tests run once however many views read it. Freshness is measured
against the build's --end: the build loads the rows up to that time, so a source is
stale when it was stale then (with --end left out, that is now, as in dbt).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .run import DataTestResult, project_tests, run_test

if TYPE_CHECKING:
    from fsql.api import Project
    from fsql.engines import OfflineEngine


class BuildGate:
    def __init__(self, project: Project, engine: OfflineEngine | None, *, at: datetime, enabled: bool) -> None:
        self.project = project
        self.engine = engine
        self.at = at
        self.enabled = enabled and engine is not None
        self.results: list[DataTestResult] = []
        self._done: dict[str, DataTestResult] = {}
        # Every test of the project, read once, by the node it belongs to.
        self._by_node: dict[tuple[str, str], list[Any]] = {}
        for test in project_tests(project.definitions) if self.enabled else ():
            self._by_node.setdefault((test.node_kind, test.node), []).append(test)

    def stop(self, view_name: str) -> str | None:
        """Run the tests of a view about to be materialized (and of its source); why it must stop, or None."""
        view = self.project.definitions.feature_views[view_name]
        if not self.enabled or not view.online or self.engine is None:
            return None
        mine = [*self._by_node.get(("source", view.source), []), *self._by_node.get(("view", view.name), [])]
        failed = [r for r in map(self._run, mine) if r.failed]
        if not failed:
            return None
        reasons = "; ".join(f"data test '{r.test.name}' {_said(r)}: {r.message}" for r in failed)
        return f"not materialized: {reasons} (--skip-tests builds without tests)"

    def _run(self, test: Any) -> DataTestResult:
        if test.name not in self._done:
            assert self.engine is not None
            self._done[test.name] = run_test(self.project, test, self.engine, at=self.at)
            self.results.append(self._done[test.name])
        return self._done[test.name]

    def results_json(self) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.results]


def _said(result: DataTestResult) -> str:
    return "failed" if result.status == "fail" else "could not run"
