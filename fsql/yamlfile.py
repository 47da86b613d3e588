"""YAML reading that keeps line numbers: strict mappings for the definitions and project.

ruamel.yaml's round-trip loader keeps the line and column of every key and item, and
refuses duplicate keys. `Mapping` wraps one YAML mapping with the object it describes so
that every error can say where it is and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from fsql.errors import DefinitionError, did_you_mean, format_location

T = TypeVar("T")

_CONTEXT_LINES = 2


@dataclass(frozen=True)
class Where:
    """A place in a file, 1-based, as people count lines."""

    path: Path
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        return format_location(self.path, self.line, self.col)

    def error(self, message: str) -> DefinitionError:
        return DefinitionError(message, path=self.path, line=self.line, col=self.col)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file, with numbered context lines around a syntax error.

    Raises:
        DefinitionError: the file is not valid YAML or repeats a key.
    """
    if text is None:
        text = path.read_text(encoding="utf-8")
    try:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        if "duplicate key" in (exc.problem or ""):
            problem = f"{exc.problem.split(' with value')[0]}; every key may appear once in a mapping"
        raise DefinitionError(
            f"invalid YAML: {problem}\n{_snippet(text, line)}", path=path, line=line, col=col
        ) from None


def _snippet(text: str, line: int | None) -> str:
    if line is None:
        return ""
    lines = text.splitlines()
    first, last = max(1, line - _CONTEXT_LINES), min(len(lines), line + _CONTEXT_LINES)
    width = len(str(last))
    return "\n".join(f"{'>' if n == line else ' '} {n:>{width}} | {lines[n - 1]}" for n in range(first, last + 1))


def where_item(seq: Any, index: int, path: Path) -> Where:
    if isinstance(seq, CommentedSeq):
        line, col = seq.lc.item(index)
        return Where(path, line + 1, col + 1)
    return Where(path)


def where_node(node: Any, path: Path) -> Where:
    if isinstance(node, CommentedMap | CommentedSeq):
        return Where(path, node.lc.line + 1, node.lc.col + 1)
    return Where(path)


class Mapping:
    """One YAML mapping describing `what` (e.g. "feature view 'driver_stats'").

    Reads typed values and turns every mistake into a `DefinitionError` at the key's line.
    """

    def __init__(self, data: Any, *, path: Path, what: str, where: Where | None = None) -> None:
        self.path = path
        self.what = what
        self._where = where or where_node(data, path)
        if not isinstance(data, dict):
            raise self._where.error(f"{what} must be a mapping of keys to values, not {_kind(data)}")
        self.data = data

    def check_keys(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                raise self.where_key(key).error(
                    f"{self.what}: unknown key '{key}'.{did_you_mean(str(key), allowed)} "
                    f"Allowed keys: {', '.join(allowed)}."
                )

    def where(self) -> Where:
        return self._where

    def where_key(self, key: str) -> Where:
        if isinstance(self.data, CommentedMap) and key in self.data:
            line, col = self.data.lc.key(key)
            return Where(self.path, line + 1, col + 1)
        return self._where

    def where_value(self, key: str) -> Where:
        if isinstance(self.data, CommentedMap) and key in self.data:
            line, col = self.data.lc.value(key)
            return Where(self.path, line + 1, col + 1)
        return self._where

    def error(self, key: str | None, message: str) -> DefinitionError:
        where = self.where_value(key) if key else self._where
        return where.error(f"{self.what}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, kind: type[T], default: T) -> T:
        if not self.has(key):
            return default
        return self.required(key, kind)

    def required(self, key: str, kind: type[T]) -> T:
        if not self.has(key):
            raise self._where.error(f"{self.what}: missing required key '{key}'")
        value = self.data[key]
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"'{key}' must be {_KIND_NAMES.get(kind, kind.__name__)}, not {_kind(value)}")
        return value  # type: ignore[return-value]

    def string_list(self, key: str) -> tuple[str, ...]:
        """A list of strings; a single string is taken as a list of one."""
        if not self.has(key):
            return ()
        value = self.data[key]
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"'{key}' must be a list of strings")
        return tuple(value)

    def mappings(self, key: str, what: Callable[[Mapping], str]) -> list[Mapping]:
        """The items of a list of mappings under `key`, each described by `what(item)`."""
        if not self.has(key):
            return []
        seq = self.data[key]
        if not isinstance(seq, list):
            raise self.error(key, f"'{key}' must be a list")
        items = []
        for index, item in enumerate(seq):
            where = where_item(seq, index, self.path)
            mapping = Mapping(item, path=self.path, what=f"{self.what}, item {index + 1} of '{key}'", where=where)
            mapping.what = what(mapping)
            items.append(mapping)
        return items


_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping"}


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"'{value}'"
