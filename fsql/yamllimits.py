"""Limits on what a YAML text may stand for, checked while the parser reads it.

Anchors and aliases stay allowed: dbt-style profiles share settings with `<<: *defaults`.
But an alias repeats its anchor's whole value, so ten lines of aliases of aliases stand for
billions of values (the "billion laughs"), and whatever walks the tree afterwards (rendering
templates, validating, writing the manifest) takes exponential time. Deep nesting makes
the YAML composer recurse until Python gives up. So the parser counts, event by event,
how many values the aliases add and how deep values nest, and stops at the event that
passes a limit: before any tree is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.parser import Parser, RoundTripParser

MAX_DEPTH = 50  # fsql's own files nest a handful of levels
MAX_ALIASED_VALUES = 10_000  # the values all aliases of a file add; `<<: *defaults` adds a few


class YAMLLimitError(MarkedYAMLError):
    """The text passes a limit; `problem` says which and what to do, `problem_mark` where."""


@dataclass
class _Open:
    """A mapping or sequence the parser is inside: its anchor, values so far, and height."""

    anchor: str | None
    values: int = 1
    height: int = 1


class _Budget:
    """What the events read so far stand for, once aliases are expanded."""

    def __init__(self) -> None:
        self.open: list[_Open] = []
        self.anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) of its value
        self.aliased = 0

    def see(self, event: Any) -> None:
        if isinstance(event, CollectionStartEvent):
            self._check_depth(len(self.open) + 1, event)
            self.open.append(_Open(event.anchor))
        elif isinstance(event, CollectionEndEvent):
            done = self.open.pop()
            self._close(done.anchor, done.values, done.height)
        elif isinstance(event, ScalarEvent):
            self._close(event.anchor, 1, 0)
        elif isinstance(event, AliasEvent):
            self._alias(event)

    def _alias(self, event: AliasEvent) -> None:
        if any(o.anchor == event.anchor for o in self.open):
            raise _refused(event, f"YAML alias *{event.anchor} is inside the value it stands for: write the value out")
        if event.anchor not in self.anchors:
            return  # the composer reports the unknown alias
        values, height = self.anchors[event.anchor]
        self.aliased += values
        if self.aliased > MAX_ALIASED_VALUES:
            raise _refused(
                event,
                f"YAML aliases repeat more than {MAX_ALIASED_VALUES} values by here (*{event.anchor} alone stands "
                f"for {values}): anchors are for sharing a few settings, such as '<<: *defaults'; write the values out",
            )
        self._check_depth(len(self.open) + height, event)
        self._close(None, values, height)

    def _close(self, anchor: str | None, values: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (values, height)
        if self.open:
            parent = self.open[-1]
            parent.values += values
            parent.height = max(parent.height, height + 1)

    @staticmethod
    def _check_depth(depth: int, event: Any) -> None:
        if depth > MAX_DEPTH:
            raise _refused(
                event,
                f"YAML nested more than {MAX_DEPTH} levels deep: no fsql file needs that; look for a runaway "
                f"bracket or indentation, or flatten the value",
            )


def _refused(event: Any, problem: str) -> YAMLLimitError:
    return YAMLLimitError(problem=problem, problem_mark=event.start_mark)


class _Counting(Parser):
    """A parser that keeps a `_Budget` of the events it hands out."""

    budget: _Budget

    def reset_parser(self) -> None:
        super().reset_parser()
        self.budget = _Budget()

    def get_event(self) -> Any:
        event = super().get_event()
        self.budget.see(event)
        return event


class LimitedParser(_Counting):
    """ruamel's plain parser, within the limits (for `YAML(typ="safe", pure=True)`)."""


class LimitedRoundTripParser(_Counting, RoundTripParser):
    """ruamel's round-trip parser (line numbers, comments), within the limits."""
