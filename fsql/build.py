"""`fsql build`, dbt-style: validate, compile, write artifacts, then materialize online views.

Each selected view is a node with a status: success, error (the others still run) or
skipped (not online, or no online store configured). Results go to
target/run_results.json; the compiled SQL to target/compiled/<dialect>/.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from fsql import artifacts
from fsql.compile.latest import compile_latest_rows
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.compile.strategy import strategy_for
from fsql.compile.tiles import compile_tiles
from fsql.datatests.gate import BuildGate
from fsql.errors import FsqlError, MigrationError
from fsql.graph import select_views
from fsql.online.embedded import online_url
from fsql.online.materialize import MaterializeRequest, materialize_view
from fsql.online.session import BuildSession
from fsql.source_schema import view_checker

if TYPE_CHECKING:
    from fsql.api import Project
    from fsql.spec import Definitions

ONLINE_HELP = (
    "no online store is configured for target '{target}': add `online: embedded` (a private Postgres under "
    "target/) or `online: postgresql+psycopg://user@host:5432/db` to it in profiles.yml to materialize online views"
)


@dataclass
class NodeResult:
    view: str
    status: str  # success | error | skipped
    message: str = ""
    rows_read: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    window: tuple[datetime | None, datetime] | None = None
    late_rows: int = 0
    watermark: datetime | None = None
    warnings: tuple[str, ...] = ()
    could_not_run: bool = False  # e.g. its table needs --full-refresh: the CLI exits 2, not 1

    def as_json(self) -> dict[str, Any]:
        start, end = self.window or (None, None)
        return {
            "unique_id": f"feature_view.{self.view}",
            "status": self.status,
            "message": self.message,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "late_rows": self.late_rows,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "warnings": list(self.warnings),
            "execution_time": round(self.seconds, 4),
            "window": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
        }


@dataclass
class BuildResult:
    nodes: list[NodeResult] = field(default_factory=list)
    online_configured: bool = True
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(node.status == "error" for node in self.nodes)

    @property
    def could_not_run(self) -> bool:
        return any(node.could_not_run for node in self.nodes)


@dataclass(frozen=True)
class BuildOptions:
    end: datetime
    select: str | None = None
    exclude: str | None = None
    full_refresh: bool = False
    start: datetime | None = None  # set by `fsql materialize` for an explicit window
    create_indexes: bool = False
    skip_tests: bool = False  # build without running the views' data tests first

    def __post_init__(self) -> None:
        # Naive times are UTC, as everywhere in fsql (a naive end once failed every view).
        for name in ("end", "start"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))


def build(
    project: Project, options: BuildOptions, *, on_node: Callable[[NodeResult], None] | None = None
) -> BuildResult:
    """Validate, compile and write artifacts, then materialize the selected online views."""
    started = time.perf_counter()
    definitions = project.validate(data_checks=False)  # each node checks its view's source against the data
    views = select_views(definitions, select=options.select, exclude=options.exclude)
    _write_compiled(project, views)
    target = project.config.target
    result = BuildResult(online_configured=target.has_online_store)
    url = online_url(project.config) if result.online_configured else None
    with _online(project, url) as online, _offline(project, online) as engine:
        gate = BuildGate(project, engine, at=options.end, enabled=not options.skip_tests)  # fsql.datatests
        if engine is not None and options.create_indexes:
            _create_indexes(project, views, engine)
        with _data_checks(project, engine) as check:
            for name in views:
                stopped = gate.stop(name)  # a failing error-level data test: the view is not materialized
                node = (
                    NodeResult(name, "error", stopped)
                    if stopped
                    else _run_node(project, name, options, engine, online, check)
                )
                result.nodes.append(node)
                if on_node is not None:
                    on_node(node)
    result.seconds = time.perf_counter() - started
    results = [*(n.as_json() for n in result.nodes), *gate.results_json()]
    artifacts.write_run_results(project.config.target_dir, results, result.seconds)
    return result


@contextmanager
def _online(project: Project, url: str | None) -> Iterator[BuildSession | None]:
    """The build's one connection to the online store (None without one); opening it is the one
    error for a store that is down, not one per view."""
    if url is None:
        yield None
        return
    with BuildSession(url, what=f"the online store of target '{project.config.target.name}'") as session:
        yield session


@contextmanager
def _offline(project: Project, online: BuildSession | None) -> Iterator[Any]:
    """The offline engine the build reads with (None when nothing is materialized)."""
    if online is None:
        yield None
        return
    with project.offline_engine() as engine:
        yield engine


@contextmanager
def _data_checks(project: Project, engine: Any) -> Iterator[Callable[[str], None]]:
    """What checks a view's source against the data before its node runs (nothing without data checks)."""
    if not project.data_checks:
        yield lambda name: None
        return
    definitions = project.definitions
    with view_checker(definitions, project.config.target, root=project.config.root, engine=engine) as check:
        yield partial(_check_kept, project, definitions, check)


def _check_kept(project: Project, definitions: Definitions, check: Callable[[str], None], name: str) -> None:
    """`check(name)`, unless it passed before on these definitions and the same unchanged files."""
    files = project.source_files([definitions.sources[definitions.feature_views[name].source]])
    if files is None:
        check(name)
        return

    def passed() -> bool:
        check(name)  # raises on a mismatch, and nothing is kept
        return True

    project.warm.get_for(definitions, "view_checked", (name, files), passed)


def _run_node(
    project: Project,
    name: str,
    options: BuildOptions,
    engine: Any,
    online: BuildSession | None,
    check: Callable[[str], None],
) -> NodeResult:
    view = project.definitions.feature_views[name]
    target = project.config.target
    try:
        check(name)  # views that are not materialized too: build checks what validate checks
    except FsqlError as exc:
        return NodeResult(name, "error", str(exc))
    if not view.online:
        return NodeResult(name, "skipped", "online: false")
    if engine is None or online is None:
        return NodeResult(name, "skipped", f"no online store configured for target '{target.name}'")
    request = MaterializeRequest(
        definitions=project.definitions,
        view=name,
        online_url=online.url,
        schema=target.online_schema,
        end=options.end,
        start=options.start,
        lateness=timedelta(seconds=view.lateness.seconds) if view.lateness else timedelta(0),
        full_refresh=options.full_refresh,
    )
    try:
        done = materialize_view(request, engine, file_root=project.config.root, session=online, cache=project.warm)
    except FsqlError as exc:
        return NodeResult(name, "error", str(exc), could_not_run=isinstance(exc, MigrationError))
    except Exception as exc:  # a database error: report it on the node, go on with the others
        return NodeResult(name, "error", f"{type(exc).__name__}: {str(exc).strip()}")
    message = "; ".join(
        [f"{done.rows_written:,} of {done.rows_read:,} rows upserted", *filter(None, [done.note]), *done.warnings]
    )
    return NodeResult(
        name,
        "success",
        message,
        done.rows_read,
        done.rows_written,
        done.seconds,
        (done.start, done.end),
        done.late_rows,
        done.watermark,
        done.warnings,
    )


def materialize_sql(definitions: Definitions, name: str, *, dialect: str) -> str | None:
    """The SQL `fsql build` materializes view `name` with (target/compiled/<dialect>/materialize/<name>.sql);
    None for an offline aggregate view, which has nothing to materialize."""
    view = definitions.feature_views[name]
    if view.is_aggregate and not (view.online and view.granularity):
        return None
    compile_rows = compile_tiles if view.is_aggregate else compile_latest_rows
    return compile_rows(definitions, name, dialect=dialect).sql


def _write_compiled(project: Project, views: list[str]) -> None:
    """target/compiled/: each view's materialization SQL and each service's training SQL, compiled
    once per definitions (a warm project's next build reuses them) and written when changed."""
    dialect = project.config.target.dialect
    definitions = project.definitions
    for name in views:
        compile_view = partial(materialize_sql, definitions, name, dialect=dialect)
        sql = project.warm.get_for(definitions, "materialize_sql", (name, dialect), compile_view)
        if sql is not None:
            project.write_sql("compiled", dialect, f"materialize/{name}", sql)
    for service in project.definitions.feature_services:
        project.compile(service=service, dialect=dialect, data_checks=False)


def _create_indexes(project: Project, views: list[str], engine: Any) -> None:
    strategy = strategy_for(engine.dialect)
    for name in views:
        view = project.definitions.feature_views[name]
        request = ViewRequest(
            view, project.definitions.sources[view.source], tuple(OutputFeature(f, f.name) for f in view.features)
        )
        statement = strategy.supporting_index(request, engine.dialect)
        if statement:
            engine.execute(statement)
