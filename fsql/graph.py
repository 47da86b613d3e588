"""Selecting feature views, dbt-style: `--select "tag:realtime driver_profile"`.

A space means union, a comma intersection; a method is `tag:x`, `source:x`, `entity:x` or a
view name (`view:x` also works); `--exclude` takes the same syntax. `+view` adds the views
sharing its source (its parents' other children), which is what a rebuild of a changed
source needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from fsql.errors import SelectionError, did_you_mean
from fsql.spec import Definitions, FeatureView

_METHODS = ("tag", "source", "entity", "view")


def select_views(definitions: Definitions, *, select: str | None = None, exclude: str | None = None) -> list[str]:
    """The names of the views a selection picks, in definition order.

    Raises:
        SelectionError: a part of the selection names nothing that exists.

    Example:
        >>> from fsql.compile import example_definitions
        >>> select_views(example_definitions(), select="driver_stats")
        ['driver_stats']
    """
    views = definitions.feature_views
    chosen = set(views) if not select else _union(definitions, select)
    if exclude:
        chosen -= _union(definitions, exclude)
    return [name for name in views if name in chosen]


def _union(definitions: Definitions, text: str) -> set[str]:
    result: set[str] = set()
    for part in text.split():
        sets = [_match(definitions, item) for item in part.split(",") if item]
        result |= set.intersection(*sets) if sets else set()
    return result


def _match(definitions: Definitions, item: str) -> set[str]:
    with_siblings = item.startswith("+")
    method, _, value = item.lstrip("+").rpartition(":")
    method = method or "view"
    if method not in _METHODS:
        raise SelectionError(f"unknown selector method '{method}:' in '{item}'; use one of {', '.join(_METHODS)}")
    views = definitions.feature_views.values()
    found = {v.name for v in views if _matches(v, method, value)}
    if not found:
        known = _known(definitions, method)
        raise SelectionError(f"'{item}' selects no feature view.{did_you_mean(value, known)}")
    if with_siblings:
        sources = {definitions.feature_views[name].source for name in found}
        found |= {v.name for v in views if v.source in sources}
    return found


def _matches(view: FeatureView, method: str, value: str) -> bool:
    return {
        "tag": value in view.tags,
        "source": view.source == value,
        "entity": value in view.entities,
        "view": view.name == value,
    }[method]


def _known(definitions: Definitions, method: str) -> Iterable[str]:
    views = definitions.feature_views.values()
    return {
        "tag": {t for v in views for t in v.tags},
        "source": set(definitions.sources),
        "entity": set(definitions.entities),
        "view": set(definitions.feature_views),
    }[method]
