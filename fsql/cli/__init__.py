"""The `fsql` command line (typer): parse options, call `fsql.api`, render, set the exit code."""

from __future__ import annotations

from fsql.cli.main import app


def main() -> None:
    app(prog_name="fsql")


__all__ = ["app", "main"]
