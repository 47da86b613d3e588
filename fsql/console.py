"""Human output: progress and summaries on stderr (stdout is for machine output)."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    err.print("[bold red]Error:[/bold red]", message, markup=True, soft_wrap=True)


def warning(message: str) -> None:
    from rich.text import Text

    err.print(Text("Warning: ", style="bold yellow") + Text(message), soft_wrap=True)  # never read as markup


def info(message: str) -> None:
    err.print(message, markup=False, soft_wrap=True)
