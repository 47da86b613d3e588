"""Every CLI option, defined once; commands reuse these so help and env vars agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project-dir", help="Directory holding fsql_project.yml.", envvar="FSQL_PROJECT_DIR")
]
TargetName = Annotated[
    str | None,
    typer.Option(
        "--target", "-t", help="Target in profiles.yml (default: the profile's target).", envvar="FSQL_TARGET"
    ),
]
ProfilesDir = Annotated[
    Path | None, typer.Option("--profiles-dir", help="Directory holding profiles.yml.", envvar="FSQL_PROFILES_DIR")
]
Vars = Annotated[str | None, typer.Option("--vars", help="YAML mapping of template vars, e.g. '{start: 2024-01-01}'.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", envvar="FSQL_DEBUG")]

Service = Annotated[str | None, typer.Option("--service", "-s", help="Feature service to compile.")]
Features = Annotated[
    str | None,
    typer.Option("--features", "-f", help="Comma-separated 'view' or 'view:feature' (instead of --service)."),
]
SpineArg = Annotated[
    str | None,
    typer.Option("--spine", help="Spine: a SELECT, a table name, or a .parquet/.csv path."),
]
SpineTimestamp = Annotated[str, typer.Option("--spine-timestamp", help="The spine's timestamp column.")]
Dialect = Annotated[str | None, typer.Option("--dialect", "-d", help="SQL dialect to emit (default: the target's).")]
FullFeatureNames = Annotated[
    bool | None,
    typer.Option("--full-feature-names/--short-feature-names", help="Name outputs view__feature.", show_default=False),
]
Output = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
Out = Annotated[
    Path | None, typer.Option("--out", help="Parquet file to write (default: target/training/<service>.parquet).")
]
Scale = Annotated[float, typer.Option("--scale", help="Data size multiplier (1 = a few seconds).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same data.")]
Select = Annotated[
    str | None,
    typer.Option("--select", "-s", help="Views to run: names, tag:x, source:x, entity:x (space = or, comma = and)."),
]
Exclude = Annotated[str | None, typer.Option("--exclude", help="Views to leave out (same syntax as --select).")]
FullRefresh = Annotated[
    bool, typer.Option("--full-refresh", help="Rebuild online tables anew and swap them in (schema changes).")
]
End = Annotated[
    str | None, typer.Option("--end", help="Materialize rows up to this time (ISO 8601, UTC; default now).")
]
Start = Annotated[str, typer.Option("--start", help="Materialize rows after this time (ISO 8601, UTC).")]
CreateIndexes = Annotated[
    bool, typer.Option("--create-indexes", help="Create the index that serves point-in-time joins on Postgres sources.")
]
Entity = Annotated[
    list[str],
    typer.Option(
        "--entity", "-e", help="Entity keys, e.g. driver_id=1001 or rider_id=5,driver_id=1001; repeat for more."
    ),
]
Now = Annotated[str | None, typer.Option("--now", help="Evaluate ttls at this time (ISO 8601; default now).")]
