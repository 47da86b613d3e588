"""YAML reading that keeps line numbers: strict mappings for the definitions and project.

ruamel.yaml's round-trip loader keeps the line and column of every key and item, and
refuses duplicate keys. `Mapping` wraps one YAML mapping with the object it describes so
that every error can say where it is and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from fsql.errors import DefinitionError, did_you_mean, format_location
from fsql.yamllimits import LimitedParser, LimitedRoundTripParser, YAMLLimitError

T = TypeVar("T")

_CONTEXT_LINES = 2
# What every fsql name must look like; items with another name are described by number.
NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
# ruamel's words for common mistakes -> what to do about them.
_YAML_HINTS = {
    "mapping values are not allowed here": "quote the value if it contains ': ', or fix the indentation",
    "found character '\\t'": "indent with spaces, not tabs",
    "that cannot start any token": "quote the value",
    "could not find expected ':'": "write 'key: value', and close any open quote",
    "found unexpected end of stream": "close the open quote or bracket",
}
_DEFAULT_YAML_HINT = "fix the YAML syntax at the marked line"


@dataclass(frozen=True)
class Where:
    """A place in a file, 1-based, as people count lines.

    `indent` is set where a multi-line text starts (a literal block scalar, a template
    file): the column at which its later lines begin, so that `at` can map a position
    inside the text back to the file.
    """

    path: Path
    line: int | None = None
    col: int | None = None
    indent: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return format_location(self.path, self.line, self.col)

    def error(self, message: str) -> DefinitionError:
        return DefinitionError(message, path=self.path, line=self.line, col=self.col)

    def at(self, line: int | None, col: int | None = None) -> Where:
        """The place of (line, col), both 1-based, inside a text that starts here.

        Example:
            >>> str(Where(Path("a.yml"), 5, 11).at(1, 4))
            'a.yml:5:14'
            >>> str(Where(Path("a.yml"), 5, 11, indent=7).at(2, 4))
            'a.yml:6:10'
        """
        if self.line is None or line is None:
            return self
        first = self.col if line == 1 else self.indent
        return Where(self.path, self.line + line - 1, first + col - 1 if first and col else None)


def load_yaml(path: Path, text: str | None = None, *, shown: Path | None = None) -> Any:
    """Parse a YAML file, with numbered context lines around a syntax error.

    Anchors and aliases are allowed within the limits of `fsql.yamllimits` (an alias bomb or
    deep nesting is an error at its line), and a mapping that merges one (`<<: *defaults`)
    owns the merged keys, so that each value is rendered and checked once.

    Args:
        path: the file to read.
        text: its text, if already read.
        shown: the path to name in errors (e.g. relative to the project), default `path`.

    Raises:
        DefinitionError: the file is not UTF-8, not valid YAML, repeats a key, or passes a limit.
    """
    shown = shown or path
    if text is None:
        text = read_text(path, shown=shown)
    yaml = YAML(typ="rt")
    yaml.Parser = LimitedRoundTripParser
    yaml.preserve_quotes = True
    document = _parse(yaml, text, shown)
    _own_merged_keys(document, set())
    return document


def load_plain_yaml(text: str, *, shown: Path) -> Any:
    """Parse YAML text (e.g. a command-line option) into plain dicts and lists, within the same limits.

    Raises:
        DefinitionError: the text is not valid YAML or passes a limit; `shown` names it.
    """
    yaml = YAML(typ="safe", pure=True)
    yaml.Parser = LimitedParser
    return _parse(yaml, text, shown)


def _parse(yaml: YAML, text: str, shown: Path) -> Any:
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise DefinitionError(f"{_yaml_problem(exc)}\n{_snippet(text, line)}", path=shown, line=line, col=col) from None


def _own_merged_keys(node: Any, seen: set[int]) -> None:
    """Make the keys that `<<: *anchor` brings into a mapping its own.

    ruamel keeps merged keys as a view of the anchor's mapping; some versions update the
    view when the anchor's value changes. Owned, a rendered value is never rendered again.
    """
    if not isinstance(node, dict | list) or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, CommentedMap):
        for key in list(node):
            if position_of(node, key) is None:
                node[key] = node[key]
    for child in node.values() if isinstance(node, dict) else node:
        _own_merged_keys(child, seen)


def position_of(data: Any, key: Any, *, value: bool = True) -> tuple[int, int] | None:
    """The 0-based (line, col) of a mapping's value (or key) as written; None for merged keys."""
    if not isinstance(data, CommentedMap):
        return None
    try:
        line, col = data.lc.value(key) if value else data.lc.key(key)
    except (KeyError, TypeError):  # a key merged in by `<<: *anchor` has no place of its own
        return None
    return line, col


def read_text(path: Path, *, shown: Path | None = None) -> str:
    """The text of a UTF-8 file.

    Raises:
        DefinitionError: the file is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"not UTF-8 text ({exc.reason}): save the file as UTF-8", path=shown or path) from None


def _yaml_problem(exc: MarkedYAMLError) -> str:
    problem = exc.problem or ""
    if isinstance(exc, YAMLLimitError):
        return problem
    if isinstance(exc, DuplicateKeyError):
        key = problem.split(" with value")[0].removeprefix("found duplicate key ").strip('"')
        return f"invalid YAML: key '{key}' appears twice in one mapping: keep one of them"
    mark, context_mark = exc.problem_mark, exc.context_mark
    if exc.context and context_mark and (not mark or context_mark.line != mark.line):
        problem += f" ({exc.context} that starts at line {context_mark.line + 1}, column {context_mark.column + 1})"
    elif exc.context:
        problem = f"{exc.context}: {problem}"
    hint = next((h for words, h in _YAML_HINTS.items() if words in problem), _DEFAULT_YAML_HINT)
    return f"invalid YAML: {problem}: {hint}"


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


def describe_item(noun: str, data: Any, index: int) -> str:
    """`feature 'x'` for an item named x, else `feature #3` (1-based)."""
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and NAME_PATTERN.match(name):
        return f"{noun} '{name}'"
    return f"{noun} #{index + 1}"


class Mapping:
    """One YAML mapping describing `what` (e.g. "feature view 'driver_stats'").

    Reads typed values and turns every mistake into a `DefinitionError` at the key's line.
    `lines` (the file's text) lets it find where a block scalar's text starts.
    """

    def __init__(
        self,
        data: Any,
        *,
        path: Path,
        what: str,
        where: Where | None = None,
        lines: tuple[str, ...] = (),
        example: str = "",
    ) -> None:
        self.path = path
        self.what = what
        self.lines = lines
        self._where = where or where_node(data, path)
        if not isinstance(data, dict):
            like = f", e.g. {example}" if example else ""
            raise self._where.error(f"{what} must be a mapping of keys to values{like}, not {_kind(data)}")
        self.data = data

    def check_keys(self, allowed: Iterable[str], *, noun: str = "key") -> None:
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                raise self.where_key(key).error(
                    f"{self.what}: unknown {noun} '{key}'.{did_you_mean(str(key), allowed)} "
                    f"Allowed {noun}s: {', '.join(allowed)}."
                )

    def where(self) -> Where:
        return self._where

    def where_key(self, key: str) -> Where:
        position = position_of(self.data, key, value=False)
        return Where(self.path, position[0] + 1, position[1] + 1) if position else self._where

    def where_value(self, key: str) -> Where:
        position = position_of(self.data, key)
        return Where(self.path, position[0] + 1, position[1] + 1) if position else self._where

    def where_text(self, key: str) -> Where:
        """Where the text of a string value starts, past any quote; a block scalar starts on the next line."""
        where = self.where_value(key)
        value = self.data.get(key)
        if where.line is None or where.col is None or not isinstance(value, str):
            return where
        if isinstance(value, FoldedScalarString):
            return Where(where.path, where.line + 1)  # folding joins lines: only the first line is known
        if isinstance(value, LiteralScalarString):
            indent = self._block_indent(where.line)
            start = Where(where.path, where.line + 1, indent, indent=indent)
        elif isinstance(value, SingleQuotedScalarString | DoubleQuotedScalarString):
            start = Where(where.path, where.line, where.col + 1)
        else:
            start = where
        return start if self._verbatim(start, value.split("\n")[0]) else Where(where.path, where.line)

    def _verbatim(self, start: Where, text: str) -> bool:
        """Whether `text` is written as is at `start`: not so for escapes or a scalar folded over lines."""
        if not self.lines or start.line is None or start.col is None or start.line > len(self.lines):
            return not self.lines
        return self.lines[start.line - 1][start.col - 1 :].startswith(text)

    def _block_indent(self, indicator_line: int) -> int | None:
        """The 1-based column of a block scalar's text: that of its first non-blank line."""
        for text in self.lines[indicator_line:]:
            if text.strip():
                return len(text) - len(text.lstrip(" ")) + 1
        return None

    def error(self, key: str | None, message: str) -> DefinitionError:
        where = self.where_value(key) if key else self._where
        return where.error(f"{self.what}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, kind: type[T], default: T) -> T:
        if not self.has(key):
            return default
        return self.required(key, kind)

    def required(self, key: str, kind: type[T], *, hint: str = "") -> T:
        """The value under `key`, of type `kind`; `hint` says what to write when it is missing."""
        if not self.has(key):
            raise self._where.error(f"{self.what}: missing required key '{key}': {hint or f'add {key}: ...'}")
        value = self.data[key]
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"'{key}' must be {_KIND_NAMES.get(kind, kind.__name__)}, not {_kind(value)}")
        return value  # type: ignore[return-value]

    def string_items(self, key: str) -> list[tuple[str, Where]]:
        """A list of strings with the place of each; a single string is taken as a list of one."""
        if not self.has(key):
            return []
        value = self.data[key]
        if isinstance(value, str):
            return [(value, self.where_value(key))]
        if not isinstance(value, list):
            raise self.error(key, f"'{key}' must be a list of strings, e.g. [a, b], not {_kind(value)}")
        items = []
        for index, item in enumerate(value):
            where = where_item(value, index, self.path)
            if not isinstance(item, str):
                raise where.error(f"{self.what}: item {index + 1} of '{key}' must be a string, not {_kind(item)}")
            items.append((item, where))
        return items

    def string_list(self, key: str) -> tuple[str, ...]:
        """A list of strings; a single string is taken as a list of one."""
        return tuple(text for text, _ in self.string_items(key))

    def mappings(self, key: str, noun: str, *, example: str = "") -> list[Mapping]:
        """The mappings listed under `key`, each described as `noun 'name'` (or `noun #n` if unnamed)."""
        if not self.has(key):
            return []
        seq = self.data[key]
        if not isinstance(seq, list):
            raise self.error(key, f"'{key}' must be a list, one item per '- ' line, not {_kind(seq)}")
        return [
            Mapping(
                item,
                path=self.path,
                what=describe_item(noun, item, index),
                where=where_item(seq, index, self.path),
                lines=self.lines,
                example=example,
            )
            for index, item in enumerate(seq)
        ]


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
