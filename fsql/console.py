"""Human output: progress and summaries on stderr (stdout is for machine output).

Messages are printed as plain text, never read as Rich markup: a YAML code frame holds
brackets (`tags: [zone]`, `[/x]`) that markup would swallow or choke on. Only the labels
("Error:", "Warning:") are styled, and rich leaves out every colour when stderr is not a
terminal. ANSI codes inside a message (sqlglot underlines the token it stopped at) are
removed first, so none reach a pipe or a log file.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.text import Text

from fsql.errors import strip_ansi

# Rich lays tables out in 80 columns when stderr is not a terminal, which cuts view names and
# watermarks short in CI logs; a pipe has no width, so give it room (COLUMNS still wins).
_PIPE_WIDTH = 200
err = Console(
    stderr=True,
    highlight=False,
    width=None if sys.stderr.isatty() or "COLUMNS" in os.environ else _PIPE_WIDTH,
)


def error(message: str) -> None:
    _print("Error: ", "bold red", message)


def warning(message: str) -> None:
    _print("Warning: ", "bold yellow", message)


def info(message: str) -> None:
    err.print(Text(strip_ansi(message)), soft_wrap=True)


def _print(label: str, style: str, message: str) -> None:
    err.print(Text.assemble((label, style), strip_ansi(message)), soft_wrap=True)
