"""Human output: progress and summaries on stderr (stdout is for machine output)."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    err.print("[bold red]Error:[/bold red]", message, markup=True, soft_wrap=True)


def info(message: str) -> None:
    err.print(message, markup=False, soft_wrap=True)
