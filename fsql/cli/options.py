"""Every CLI option, defined once; commands reuse these so help and env vars agree.

Each option taking a value names it with a metavar (`--target NAME`); a flag takes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ProjectDir = Annotated[
    Path,
    typer.Option("--project-dir", metavar="DIR", help="Directory holding fsql_project.yml.", envvar="FSQL_PROJECT_DIR"),
]
TargetName = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        metavar="NAME",
        help="Target in profiles.yml (default: the profile's target).",
        envvar="FSQL_TARGET",
    ),
]
ProfilesDir = Annotated[
    Path | None,
    typer.Option("--profiles-dir", metavar="DIR", help="Directory holding profiles.yml.", envvar="FSQL_PROFILES_DIR"),
]
Vars = Annotated[
    str | None,
    typer.Option("--vars", metavar="YAML", help="YAML mapping of template vars, e.g. '{start: 2024-01-01}'."),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", envvar="FSQL_DEBUG")]
NoDataChecks = Annotated[
    bool,
    typer.Option(
        "--no-data-checks",
        help="Check the definitions alone, not against their files and tables (e.g. in CI without the data).",
        envvar="FSQL_NO_DATA_CHECKS",
    ),
]

# The options every project command accepts before the command and after it, as dbt does
# (`fsql -t prod build` and `fsql build -t prod`): (parameter, option, default). A value
# given after the command wins.
PROJECT_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("project_dir", ProjectDir, Path(".")),
    ("target", TargetName, None),
    ("profiles_dir", ProfilesDir, None),
    ("vars", Vars, None),
    ("debug", Debug, False),
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from fsql import __version__

        typer.echo(f"fsql {__version__}")
        raise typer.Exit()


Version = Annotated[
    bool,
    typer.Option("--version", help="Print fsql's version and exit.", is_eager=True, callback=_print_version),
]
ProjectName = Annotated[
    str | None,
    typer.Argument(
        metavar="NAME",
        help="The new project's name and directory (lowercase snake_case; default my_features).",
        show_default=False,
    ),
]

Service = Annotated[str | None, typer.Option("--service", "-s", metavar="NAME", help="Feature service to compile.")]
Features = Annotated[
    str | None,
    typer.Option(
        "--features",
        "-f",
        metavar="LIST",
        help="Comma-separated 'view' or 'view:feature' (instead of --service).",
    ),
]
SpineArg = Annotated[
    str | None,
    typer.Option("--spine", metavar="SPINE", help="Spine: a SELECT, a table name, or a .parquet/.csv path."),
]
SpineTimestamp = Annotated[
    str, typer.Option("--spine-timestamp", metavar="COLUMN", help="The spine's timestamp column.")
]
Dialect = Annotated[
    str | None,
    typer.Option("--dialect", "-d", metavar="DIALECT", help="SQL dialect to emit (default: the target's)."),
]
FullFeatureNames = Annotated[
    bool | None,
    typer.Option("--full-feature-names/--short-feature-names", help="Name outputs view__feature.", show_default=False),
]
Output = Annotated[str, typer.Option("--output", "-o", metavar="FORMAT", help="table or json.")]
Out = Annotated[
    Path | None,
    typer.Option("--out", metavar="FILE", help="Parquet file to write (default: target/training/<service>.parquet)."),
]
Scale = Annotated[float, typer.Option("--scale", metavar="FACTOR", help="Data size multiplier (1 = a few seconds).")]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="Random seed; the same seed gives the same data.")]
Select = Annotated[
    str | None,
    typer.Option(
        "--select",
        "-s",
        metavar="SELECTOR",
        help=(
            "Views to run: names, tag:x, source:x, entity:x, service:x; +x adds x's parents, x+ its children "
            "(space = or, comma = and)."
        ),
    ),
]
Exclude = Annotated[
    str | None,
    typer.Option("--exclude", metavar="SELECTOR", help="Views to leave out (same syntax as --select)."),
]
FullRefresh = Annotated[
    bool, typer.Option("--full-refresh", help="Rebuild online tables anew and swap them in (schema changes).")
]
End = Annotated[
    str | None,
    typer.Option("--end", metavar="TIME", help="Materialize rows up to this time (ISO 8601, UTC; default now)."),
]
Start = Annotated[
    str, typer.Option("--start", metavar="TIME", help="Materialize rows after this time (ISO 8601, UTC).")
]
CreateIndexes = Annotated[
    bool, typer.Option("--create-indexes", help="Create the index that serves point-in-time joins on Postgres sources.")
]
Entity = Annotated[
    list[str],
    typer.Option(
        "--entity",
        "-e",
        metavar="KEYS",
        help="Entity keys, e.g. driver_id=1001 or rider_id=5,driver_id=1001; repeat for more.",
    ),
]
Now = Annotated[
    str | None, typer.Option("--now", metavar="TIME", help="Evaluate ttls at this time (ISO 8601; default now).")
]
WithStatus = Annotated[
    bool,
    typer.Option(
        "--with-status",
        help="Print each value's status (PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE) and event time, and each view's as_of.",
    ),
]
Host = Annotated[
    str,
    typer.Option(
        "--host", metavar="ADDRESS", help="Address to listen on (0.0.0.0: every interface).", envvar="FSQL_SERVE_HOST"
    ),
]
Port = Annotated[int, typer.Option("--port", metavar="PORT", help="TCP port to listen on.", envvar="FSQL_SERVE_PORT")]
DocsPort = Annotated[
    int, typer.Option("--port", metavar="PORT", help="TCP port to serve the catalog on (0: a free one).")
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Require 'Authorization: Bearer TOKEN' on every route but /health (better: set FSQL_SERVE_TOKEN).",
        envvar="FSQL_SERVE_TOKEN",
        show_envvar=True,
    ),
]
MaxEntities = Annotated[
    int, typer.Option("--max-entities", metavar="N", help="Most entity rows in one request (more: 413).", min=1)
]
MaxBody = Annotated[
    int, typer.Option("--max-body", metavar="BYTES", help="Largest request body accepted (larger: 413).", min=1)
]
PoolSize = Annotated[
    int, typer.Option("--pool-size", metavar="N", help="Most Postgres connections the server opens.", min=1)
]
At = Annotated[
    str | None,
    typer.Option("--at", metavar="TIME", help="Measure freshness against this time (ISO 8601, UTC; default now)."),
]
SkewService = Annotated[str, typer.Option("--service", "-s", metavar="NAME", help="Feature service to check.")]
SkewSample = Annotated[
    int, typer.Option("--sample", "-n", metavar="N", help="Entities to sample from each view's online table.")
]
SkewSeed = Annotated[int, typer.Option("--seed", metavar="N", help="Sampling seed; the same seed, the same entities.")]
SkewAt = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIME",
        help="Lookup time (ISO 8601, UTC; default now, clamped to the newest build end of the service's views).",
    ),
]
SkipTests = Annotated[
    bool, typer.Option("--skip-tests", help="Materialize without running the views' data tests first.")
]
TestSelect = Annotated[
    str | None,
    typer.Option(
        "--select",
        "-s",
        metavar="SELECTOR",
        help=(
            "Sources and views whose tests run: names, tag:x, source:x, entity:x, service:x; +x adds x's parents "
            "(a view's source), x+ its children (space = or, comma = and)."
        ),
    ),
]
DriftService = Annotated[str, typer.Option("--service", "-s", metavar="NAME", help="Feature service to compare.")]
DriftReference = Annotated[
    Path | None,
    typer.Option(
        "--reference", metavar="FILE", help="Reference training set (parquet/CSV), e.g. target/training/S.parquet."
    ),
]
DriftReferenceWindow = Annotated[
    str | None,
    typer.Option("--reference-window", metavar="START..END", help="Reference: spine rows with START <= ts < END."),
]
DriftCurrent = Annotated[
    Path | None, typer.Option("--current", metavar="FILE", help="Current training set (parquet/CSV).")
]
DriftCurrentWindow = Annotated[
    str | None,
    typer.Option("--current-window", metavar="START..END", help="Current: spine rows with START <= ts < END."),
]
DriftHtml = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Also write a static HTML report with histograms.")
]
