"""The one error root fsql raises, and its few kinds.

Every message names the thing, where it is and what to do. The CLI catches `FsqlError`
alone; tests match on the subclass.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from pathlib import Path

_SECRET_ENV_PREFIX = "FSQL_ENV_SECRET_"
_registered_secrets: set[str] = set()
# CSI sequences (colours, underline) and OSC ones (links), as sqlglot and terminals write them.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def register_secret(value: str | None) -> None:
    """Remember a value (a profile password, say) that must never appear in output."""
    if value and len(value) >= 3:
        _registered_secrets.add(value)


def scrub_secrets(text: str) -> str:
    """Replace every known secret in `text` with '*****'.

    Secrets are the values of `FSQL_ENV_SECRET_*` environment variables and the
    passwords read from profiles.
    """
    secrets = set(_registered_secrets)
    secrets.update(v for k, v in os.environ.items() if k.startswith(_SECRET_ENV_PREFIX) and v)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "*****")
    return text


def strip_ansi(text: str) -> str:
    r"""`text` without ANSI escape codes (sqlglot underlines the token a parse stopped at).

    Example:
        >>> strip_ansi("SELECT +* \x1b[4mFROM\x1b[0m")
        'SELECT +* FROM'
    """
    return _ANSI.sub("", text)


class FsqlError(Exception):
    """The root of every error fsql raises on purpose; its text is plain, with no ANSI codes."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub_secrets(strip_ansi(message)))

    @property
    def message(self) -> str:
        return str(self)


class ProjectError(FsqlError):
    """The project file, the profiles or the command line are wrong."""


class DefinitionError(FsqlError):
    """A YAML definition or a template is wrong; carries where."""

    def __init__(
        self, message: str, *, path: Path | str | None = None, line: int | None = None, col: int | None = None
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.col = col
        super().__init__(f"{format_location(path, line, col)}: {message}" if path else message)


class CompileError(FsqlError):
    """The definitions are valid but the request cannot be compiled."""


class ExecutionError(FsqlError):
    """The engine refused or failed to run SQL fsql handed it."""

    def __init__(self, message: str, *, node: str | None = None, sql_path: Path | str | None = None) -> None:
        self.node = node
        self.sql_path = Path(sql_path) if sql_path is not None else None
        where = f" (see {sql_path})" if sql_path else ""
        first, newline, detail = message.partition("\n")
        super().__init__(f"{first}{where}{newline}{detail}")


class MigrationError(ExecutionError):
    """An online table cannot take the definition as it is (a changed key or type): it must be
    rebuilt with --full-refresh. Nothing was written; the CLI exits 2, not 1."""


class SelectionError(FsqlError):
    """A selection names nothing that exists."""


def format_location(path: Path | str | None, line: int | None = None, col: int | None = None) -> str:
    """Format `path:line:col`, leaving out what is unknown."""
    text = str(path) if path is not None else "<unknown>"
    if line is not None:
        text += f":{line}"
        if col is not None:
            text += f":{col}"
    return text


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest candidate, or ''."""
    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""
