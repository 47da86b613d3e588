"""`fsql` commands. Each is thin: options -> `fsql.api.Project` -> rendering -> exit code.

Exit codes (see `fsql.cli.context`): 0 success; 1 the command ran but something failed (a
query, a node); 2 it could not run (usage, configuration, connection, definitions).
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from fsql import __version__, console
from fsql.api import Project
from fsql.build import ONLINE_HELP, BuildOptions, NodeResult
from fsql.cli import options as opt
from fsql.cli.context import handled, parse_vars, project_options
from fsql.cli.docs import docs_app
from fsql.compile.spine import DEFAULT_SPINE_TABLE, DEFAULT_SPINE_TIMESTAMP
from fsql.errors import ProjectError
from fsql.online.entities import parse_entity
from fsql.online.result import LookupResult

app = typer.Typer(
    name="fsql",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    # Plain help, as dbt's: typer's rich panels show every flag as taking a <bool> value.
    rich_markup_mode=None,
)
app.add_typer(docs_app)


@app.callback()
@project_options
def _global(ctx: typer.Context, version: opt.Version = False) -> None:
    """Feature definitions in YAML, compiled into point-in-time correct SQL.

    The project options (--project-dir, --target, --profiles-dir, --vars, --debug) go
    before the command or after it: `fsql -t prod build` or `fsql build -t prod`.
    """


def _count(n: int, nouns: str) -> str:
    singular, plural = nouns.split("/")
    return f"{n} {singular if n == 1 else plural}"


def _parse_time(text: str | None, option: str) -> datetime:
    """An ISO 8601 time; naive means UTC; None means now."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ProjectError(f"{option} '{text}' is not an ISO 8601 time, e.g. 2024-03-20T12:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


@app.command()
@project_options
def validate(ctx: typer.Context, no_data_checks: opt.NoDataChecks = False) -> None:
    """Parse and check every definition, and every file and table source against its data; exit 0, or 2."""
    with handled(ctx):
        project = ctx.obj.project(no_data_checks=no_data_checks)
        definitions = project.validate()
        counts = ", ".join(
            _count(n, noun)
            for n, noun in (
                (len(definitions.entities), "entity/entities"),
                (len(definitions.sources), "source/sources"),
                (len(definitions.feature_views), "feature view/feature views"),
                (len(definitions.derived_views), "derived view/derived views"),
                (len(definitions.feature_services), "feature service/feature services"),
            )
            if n or noun.startswith(("entity", "source", "feature"))
        )
        console.info(f"OK: {counts} in {project.config.root}")
        _said_data_checks(project)


def _said_data_checks(project: Project) -> None:
    report = project.data_report
    if report is None:
        return
    checked = _count(len(report.checked), "file or table source/file and table sources")
    console.info(f"checked {checked} against the data on {report.engine} in {report.seconds:.2f} s")
    by_reason: dict[str, list[str]] = {}
    for source, reason in report.skipped.items():
        by_reason.setdefault(reason, []).append(source)
    for reason, sources in by_reason.items():
        console.warning(f"not checked against the data: {', '.join(sources)}: {reason}")


@app.command(name="compile")
@project_options
def compile_(
    ctx: typer.Context,
    service: opt.Service = None,
    features: opt.Features = None,
    spine: opt.SpineArg = None,
    spine_timestamp: opt.SpineTimestamp = DEFAULT_SPINE_TIMESTAMP,
    dialect: opt.Dialect = None,
    full_feature_names: opt.FullFeatureNames = None,
    no_data_checks: opt.NoDataChecks = False,
) -> None:
    """Print the point-in-time training SQL and write it under target/compiled/<dialect>/."""
    with handled(ctx):
        project = ctx.obj.project(no_data_checks=no_data_checks)
        compiled, path = project.compile(
            service=service,
            features=_split(features),
            spine=spine or DEFAULT_SPINE_TABLE,
            spine_timestamp=spine_timestamp,
            dialect=dialect,
            full_feature_names=full_feature_names,
        )
        typer.echo(compiled.sql, nl=False)
        console.info(f"wrote {path}")


@app.command()
@project_options
def train(
    ctx: typer.Context,
    spine: opt.SpineArg = None,
    out: opt.Out = None,
    service: opt.Service = None,
    features: opt.Features = None,
    spine_timestamp: opt.SpineTimestamp = DEFAULT_SPINE_TIMESTAMP,
    full_feature_names: opt.FullFeatureNames = None,
    no_data_checks: opt.NoDataChecks = False,
) -> None:
    """Build a training set on the target's offline engine and write it as parquet."""
    with handled(ctx):
        if not spine:
            raise ProjectError("fsql train needs --spine: a SELECT, a table name, or a .parquet/.csv path")
        project = ctx.obj.project(no_data_checks=no_data_checks)
        started = time.perf_counter()
        out, table = project.write_training_set(
            out=out,
            spine=spine,
            service=service,
            features=_split(features),
            spine_timestamp=spine_timestamp,
            full_feature_names=full_feature_names,
        )
        console.info(
            f"wrote {out}: {table.num_rows:,} rows x {table.num_columns} columns in "
            f"{time.perf_counter() - started:.2f} s"
        )


@app.command(name="ls")
@project_options
def list_(ctx: typer.Context, output: opt.Output = "table") -> None:
    """List entities, sources, feature views, features and services."""
    with handled(ctx):
        if output not in ("table", "json"):
            raise ProjectError(f"--output must be 'table' or 'json', not '{output}'")
        described = ctx.obj.project().describe()
        if output == "json":
            typer.echo(json.dumps(described, indent=2))
        else:
            _print_tables(described)


def _print_tables(described: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def table(title: str, *columns: str) -> Table:
        return Table(*columns, title=title, title_justify="left", title_style="bold")

    entities = table("Entities", "entity", "join keys")
    for name, e in described["entities"].items():
        entities.add_row(name, ", ".join(f"{k['name']} ({k['type']})" for k in e["join_keys"]))
    sources = table("Sources", "source", "kind", "reads", "timestamp", "created")
    for name, s in described["sources"].items():
        reads = s["location"] if s["kind"] != "sql" or s["template"] else f"inline SQL ({s['defined_at']})"
        sources.add_row(name, s["kind"], reads, s["timestamp"], s["created_timestamp"] or "")
    features = table("Features", "feature view", "feature", "type", "entities", "ttl", "online")
    for view_name, v in described["feature_views"].items():
        for feature, d in v["features"].items():
            online = "yes" if v["online"] else "no"
            features.add_row(view_name, feature, d["type"], ", ".join(v["entities"]), v["ttl"] or "-", online)
    derived = table("Derived features", "derived view", "feature", "type", "expression")
    reads = []
    for view_name, d in described["derived_views"].items():
        for feature, f in d["features"].items():
            derived.add_row(view_name, feature, f["type"], f["expr"])
        request = ", ".join(f"{name} ({type_})" for name, type_ in d["request"].items()) or "none"
        reads.append(f"{view_name} reads {', '.join(d['inputs'])}; request fields: {request}")
    derived.caption, derived.caption_justify = "\n".join(reads), "left"
    services = table("Feature services", "feature service", "features")
    for name, s in described["feature_services"].items():
        services.add_row(name, ", ".join(s["features"]))
    out = Console()
    for each in (entities, sources, features, derived, services):
        if each.row_count:
            out.print(each)


@app.command()
@project_options
def seed(ctx: typer.Context, scale: opt.Scale = 1.0, seed: opt.Seed = 42) -> None:
    """Generate the example project's data with its deterministic generator."""
    with handled(ctx):
        started = time.perf_counter()
        written = ctx.obj.project().seed(scale=scale, seed=seed)
        for path, rows in written.items():
            console.info(f"wrote {path}: {rows:,} rows")
        console.info(f"seeded in {time.perf_counter() - started:.2f} s")


@app.command()
def init(ctx: typer.Context, name: opt.ProjectName = None) -> None:
    """Create a new project in ./NAME that validates and trains at once."""
    from fsql.scaffold import DEFAULT_NAME, SERVICE, SPINE, create_project

    with handled(ctx):
        name = name or DEFAULT_NAME
        directory = create_project(Path.cwd(), name)
        console.info(f"created project '{name}' in {directory}; next:")
        for step in (f"cd {name}", "fsql validate", f"fsql train --service {SERVICE} --spine {SPINE}"):
            console.info(f"  {step}")


_CHECK_STATUS = {"ok": "OK", "fail": "FAIL", "skipped": "-", "absent": "-"}


@app.command(name="debug")
@project_options
def debug_(ctx: typer.Context) -> None:
    """Check the project file, the profile, the offline engine and the online store; exit 2 if one fails."""
    from fsql.diagnose import run_checks

    with handled(ctx):
        options = ctx.obj
        console.info(f"fsql {__version__}")
        checks = run_checks(
            options.project_dir, target=options.target, profiles_dir=options.profiles_dir, vars=parse_vars(options.vars)
        )
        for check in checks:
            console.info(f"{check.name:<15} {_CHECK_STATUS[check.status]:<5} {check.detail}")
        failed = sum(check.failed for check in checks)
        if failed:
            console.error(f"{_count(failed, 'check/checks')} of {len(checks)} failed")
            raise typer.Exit(2)
        console.info("all checks passed")


@app.command()
@project_options
def build(
    ctx: typer.Context,
    select: opt.Select = None,
    exclude: opt.Exclude = None,
    full_refresh: opt.FullRefresh = False,
    end: opt.End = None,
    create_indexes: opt.CreateIndexes = False,
    no_data_checks: opt.NoDataChecks = False,
    skip_tests: opt.SkipTests = False,
) -> None:
    """Validate, compile, write target/ artifacts, run each view's data tests, and materialize online views."""
    with handled(ctx):
        options = BuildOptions(
            end=_parse_time(end, "--end"),
            select=select,
            exclude=exclude,
            full_refresh=full_refresh,
            create_indexes=create_indexes,
            skip_tests=skip_tests,
        )
        _run_build(ctx.obj.project(no_data_checks=no_data_checks), options)


@app.command()
@project_options
def materialize(
    ctx: typer.Context,
    start: opt.Start,
    end: opt.End = None,
    select: opt.Select = None,
    exclude: opt.Exclude = None,
    no_data_checks: opt.NoDataChecks = False,
    skip_tests: opt.SkipTests = False,
) -> None:
    """Materialize online views for an explicit window (start, end], whatever their watermark."""
    with handled(ctx):
        options = BuildOptions(
            end=_parse_time(end, "--end"),
            start=_parse_time(start, "--start"),
            select=select,
            exclude=exclude,
            skip_tests=skip_tests,
        )
        _run_build(ctx.obj.project(no_data_checks=no_data_checks), options)


def _nothing_to_do(options: BuildOptions) -> str:
    if not options.select and not options.exclude:
        return "nothing to do: the project defines no feature view"
    selection = f"'{options.select}'" if options.select else "of every feature view"
    minus = f" minus --exclude '{options.exclude}'" if options.exclude else ""
    return f"nothing to do: the selection {selection}{minus} matches no feature view"


def _run_build(project: Project, options: BuildOptions) -> None:
    from rich.table import Table

    if not project.select_views(select=options.select, exclude=options.exclude):
        console.warning(_nothing_to_do(options))  # dbt's way: a warning, exit 0, nothing run
        return
    status = console.err.status("materializing ...")
    status.start()

    def progress(node: NodeResult) -> None:
        status.update(f"materialized {node.view}")
        console.info(f"{node.status:>7}  {node.view}  {node.message}  ({node.seconds:.2f} s)")

    try:
        result = project.build(options, on_node=progress)
    finally:
        status.stop()
    summary = Table(
        "feature view",
        "status",
        "rows read",
        "rows upserted",
        "late rows",
        "watermark",
        "seconds",
        title="fsql build",
        title_justify="left",
    )
    for node in result.nodes:
        summary.add_row(
            node.view,
            node.status,
            f"{node.rows_read:,}",
            f"{node.rows_written:,}",
            f"{node.late_rows:,}",
            node.watermark.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if node.watermark else "",
            f"{node.seconds:.2f}",
        )
    console.err.print(summary)
    for node in result.nodes:
        for said in node.warnings:
            console.warning(f"{node.view}: {said}")
    if not result.online_configured:
        console.info(ONLINE_HELP.format(target=project.config.target.name))
    console.info(f"done in {result.seconds:.2f} s; artifacts in {project.config.target_dir}")
    if result.failed:
        for node in result.nodes:
            if node.status == "error":
                console.error(f"{node.view}: {node.message}")
        raise typer.Exit(2 if result.could_not_run else 1)


@app.command(name="test")
@project_options
def test_(
    ctx: typer.Context,
    select: opt.TestSelect = None,
    exclude: opt.Exclude = None,
    at: opt.At = None,
    no_data_checks: opt.NoDataChecks = False,
) -> None:
    """Run the data tests of sources, feature views and features; exit 1 if an error-level test fails."""
    from fsql.cli.datatests import run_data_tests

    with handled(ctx):
        project = ctx.obj.project(no_data_checks=no_data_checks)
        run_data_tests(project, select=select, exclude=exclude, at=_parse_time(at, "--at"))


@app.command()
@project_options
def drift(
    ctx: typer.Context,
    service: opt.DriftService,
    reference: opt.DriftReference = None,
    reference_window: opt.DriftReferenceWindow = None,
    current: opt.DriftCurrent = None,
    current_window: opt.DriftCurrentWindow = None,
    spine: opt.SpineArg = None,
    spine_timestamp: opt.SpineTimestamp = DEFAULT_SPINE_TIMESTAMP,
    output: opt.Output = "table",
    html: opt.DriftHtml = None,
    no_data_checks: opt.NoDataChecks = False,
) -> None:
    """Compare a service's features between a reference and a current training set; exit 1 on
    significant drift or too many NULLs.

    Each side is a training set file (--reference/--current, as `fsql train` writes) or a
    window START..END of --spine's timestamps (--reference-window/--current-window), for
    which the training query runs in the engine.
    """
    from fsql.cli import drift as drift_cli

    with handled(ctx):
        sides = (
            drift_cli.side(reference, reference_window, "reference"),
            drift_cli.side(current, current_window, "current"),
        )
        if any(s.window is not None for s in sides) and not spine:
            raise ProjectError("a --reference-window or --current-window reads a spine: give it with --spine")
        project = ctx.obj.project(no_data_checks=no_data_checks)
        drift_cli.run(
            project, service=service, reference=sides[0], current=sides[1], spine=spine,
            spine_timestamp=spine_timestamp, output=output, html=html,
        )  # fmt: skip


@app.command()
@project_options
def skew(
    ctx: typer.Context,
    service: opt.SkewService,
    sample: opt.SkewSample = 100,
    seed: opt.SkewSeed = 0,
    at: opt.SkewAt = None,
    output: opt.Output = "table",
) -> None:
    """Compare online lookups with training values for sampled entities; exit 1 on any disagreement."""
    from fsql.cli.skew import show_skew

    with handled(ctx):
        if output not in ("table", "json"):
            raise ProjectError(f"--output must be 'table' or 'json', not '{output}'")
        project = ctx.obj.project()
        report = project.skew(service=service, sample=sample, seed=seed, at=_parse_time(at, "--at") if at else None)
        show_skew(project, report, output=output)


@app.command()
@project_options
def get(
    ctx: typer.Context,
    entity: opt.Entity,
    service: opt.Service = None,
    features: opt.Features = None,
    full_feature_names: opt.FullFeatureNames = None,
    now: opt.Now = None,
    with_status: opt.WithStatus = False,
) -> None:
    """Look features up in the online store and print them as JSON, one object per --entity.

    With --with-status: {"as_of": {view: time or null}, "rows": [{"entity", "values",
    "statuses", "event_timestamps"}]}. NaN and infinite values print as null (JSON has no
    such numbers); times print in ISO 8601.
    """
    with handled(ctx):
        project = ctx.obj.project()
        rows = [parse_entity(text, project.definitions) for text in entity]
        result = project.lookup(
            rows,
            service=service,
            features=_split(features),
            full_feature_names=full_feature_names,
            now=_parse_time(now, "--now") if now else None,
        )
        shown = _with_status(result) if with_status else _json_values(result.rows())
        typer.echo(json.dumps(shown, indent=2, default=str, allow_nan=False))


@app.command()
@project_options
def serve(
    ctx: typer.Context,
    host: opt.Host = "127.0.0.1",
    port: opt.Port = 6566,
    token: opt.Token = None,
    max_entities: opt.MaxEntities = 1000,
    max_body: opt.MaxBody = 1 << 20,
    pool_size: opt.PoolSize = 8,
) -> None:
    """Serve online lookups over HTTP in Feast's JSON: POST /get-online-features, POST /push (rows of
    push-enabled views, online and into folder sources), GET /health, GET /metrics."""
    with handled(ctx):
        from fsql.server import serve as run_server
        from fsql.server.app import ServerOptions

        project = ctx.obj.project()
        options = ServerOptions(
            token=token or None, max_entities=max_entities, max_body_bytes=max_body, push_root=project.config.root
        )
        console.info(f"serving the online store of target '{project.config.target.name}' on http://{host}:{port}")
        run_server(project, host=host, port=port, pool_size=pool_size, options=options)


def _with_status(result: LookupResult) -> dict[str, Any]:
    values = _json_values([dict(zip(result.feature_names, row, strict=True)) for row in result.values])
    rows = zip(result.entities, values, result.statuses(), result.event_timestamps(), strict=True)
    return {
        "as_of": _json_times(result.as_of()),
        "rows": [
            {"entity": dict(keys), "values": row, "statuses": statuses, "event_timestamps": _json_times(times)}
            for keys, row, statuses, times in rows
        ],
    }


def _json_times(times: dict[str, datetime | None]) -> dict[str, str | None]:
    return {name: None if moment is None else moment.isoformat() for name, moment in times.items()}


def _json_values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NaN and infinities as null: JSON has no such numbers, and most parsers refuse
    Python's `NaN` and `Infinity` tokens (the Python API keeps them as floats)."""
    return [{name: None if _non_finite(value) else value for name, value in row.items()} for row in rows]


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
