"""What every command shares: the project options, and `handled()` (errors -> exit codes).

Exit codes: 0 success; 1 the command ran but something in it failed (a query, a node);
2 it could not run (usage, configuration, a connection, definitions, a migration that
needs --full-refresh, unexpected errors).
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer
from sqlglot.errors import SqlglotError

from fsql import console
from fsql.api import Project, load_project
from fsql.cli import options as opt
from fsql.errors import DefinitionError, ExecutionError, FsqlError, MigrationError, ProjectError, scrub_secrets
from fsql.yamlfile import load_plain_yaml


@dataclass(frozen=True)
class GlobalOptions:
    project_dir: Path
    target: str | None
    profiles_dir: Path | None
    vars: str | None
    debug: bool

    def project(self, *, no_data_checks: bool = False) -> Project:
        return load_project(
            self.project_dir,
            target=self.target,
            vars=parse_vars(self.vars),
            profiles_dir=self.profiles_dir,
            data_checks=not no_data_checks,
        )


def project_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command (or the app's callback) the options of `opt.PROJECT_OPTIONS`.

    On the callback they set `ctx.obj`; on a command, a value given on its command line
    replaces the one given before the command (or read from the environment), so
    `fsql -t dev build -t prod` builds prod. The command itself takes only `ctx` of them.
    """
    names = [name for name, _, _ in opt.PROJECT_OPTIONS]
    signature = inspect.signature(command, eval_str=True)
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=default)
        for name, option, default in opt.PROJECT_OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx: typer.Context = kwargs["ctx"]
        given = {name: kwargs.pop(name) for name in names}
        if not isinstance(ctx.obj, GlobalOptions):
            ctx.obj = GlobalOptions(**given)
        else:
            ctx.obj = replace(ctx.obj, **{name: given[name] for name in names if _on_command_line(ctx, name)})
        command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *shared]
    )
    return wrapper


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@contextmanager
def handled(ctx: typer.Context) -> Iterator[None]:
    """Turn fsql's errors into one red message and an exit code; tracebacks only with --debug."""
    debug = ctx.obj.debug if isinstance(ctx.obj, GlobalOptions) else False
    try:
        yield
    except typer.Exit:
        raise
    except MigrationError as exc:  # nothing ran: the table must be rebuilt first
        fail(exc, debug, code=2)
    except ExecutionError as exc:
        fail(exc, debug, code=1)
    except (FsqlError, SqlglotError) as exc:
        fail(exc, debug, code=2)
    except Exception as exc:  # an fsql bug: say so, keep the details behind --debug
        fail(exc, debug, code=2, prefix="unexpected error (rerun with --debug for a traceback): ")


def fail(exc: BaseException, debug: bool, *, code: int, prefix: str = "") -> None:
    if debug:
        console.info(scrub_secrets(traceback.format_exc()))
    console.error(scrub_secrets(f"{prefix}{exc}"))
    raise typer.Exit(code)


def parse_vars(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = load_plain_yaml(text, shown=Path("--vars"))
    except DefinitionError as exc:  # invalid YAML, an alias bomb or nesting too deep, at its column
        raise ProjectError(str(exc)) from None
    if not isinstance(value, dict):
        raise ProjectError("--vars must be a YAML mapping, e.g. '{start_date: 2024-01-01}'")
    return value
