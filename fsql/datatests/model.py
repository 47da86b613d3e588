"""A data test as the definitions declare it: which check, on which node, with what bounds.

The model knows no dialect and no connection; `fsql.datatests.sql` turns it into a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsql.durations import Duration
from fsql.yamlfile import Where

KINDS = ("not_null", "unique", "accepted_values", "accepted_range", "row_count", "expression", "freshness")
# dbt's names for the same checks, accepted as they are written there.
ALIASES = {"expression_is_true": "expression"}
SEVERITIES = ("error", "warn")
# Kinds about the whole relation, not a column: never declared on a feature.
RELATION_KINDS = ("row_count", "freshness")


@dataclass(frozen=True)
class DataTest:
    """One test of a source or a feature view (or one of its features)."""

    name: str  # unique in the project, e.g. not_null_driver_stats_driver_id
    kind: str  # one of KINDS
    node_kind: str  # "source" or "view"
    node: str  # the source's or the view's name
    columns: tuple[str, ...] = ()
    feature: str | None = None  # declared on this feature of the view
    values: tuple[Any, ...] = ()  # accepted_values
    min: float | int | None = None  # accepted_range, row_count
    max: float | int | None = None
    inclusive: bool = True  # accepted_range
    expression: str | None = None  # expression: a predicate every row must satisfy
    warn_after: Duration | None = None  # freshness
    error_after: Duration | None = None
    severity: str = "error"
    where: Where = field(default=Where(Path("<memory>")), compare=False)

    @property
    def unique_id(self) -> str:
        return f"test.{self.name}"

    @property
    def node_id(self) -> str:
        return f"{'source' if self.node_kind == 'source' else 'feature_view'}.{self.node}"
