"""The graph of a project's definitions, and selecting feature views in it, dbt-style.

The graph, parents on the left:

    source ──▶ feature view ──▶ feature service

A view reads one source; a service uses features of one or more views. Entities and tags
are attributes of views, not nodes. Only feature views are built (`fsql build`
materializes them): sources are read, never built, and services are compiled, never
materialized. So a selection picks nodes of the graph, and the views among them run.

`--select "tag:realtime driver_profile"`: a space means union, a comma intersection. Each
part is `[+]method:value[+]`, the method one of:

- `view:x`, or just `x`: the feature view x;
- `source:x`: the views reading source x (the same as `source:x+`);
- `service:x`: the views service x uses (the same as `+service:x`);
- `tag:x`: the views tagged x; `entity:x`: the views keyed by entity x.

As in dbt, `+` before a part adds the nodes upstream of it (its parents, theirs, ...) and
`+` after it the nodes downstream. A source or a service stands for its views (dbt would
select the bare node and build nothing, which is never what `--select source:x` means).
On a view, `+x` and `x+` add no other view today: upstream of a view is its source and
downstream are services, neither of which is built, so dbt's meaning ("x and what it
needs", "x and what it feeds") is x alone. The operators walk the graph, so they will
follow any edge added later (a source reading another through `source()` is not an edge
yet).

`--exclude` takes the same syntax. A name that exists nowhere is an error with a
suggestion; a selection of known names that matches no view is an empty list, which the
CLI reports as "nothing to do" (dbt's behaviour, exit 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fsql.errors import SelectionError, did_you_mean
from fsql.spec import Definitions

_METHODS = ("view", "source", "service", "tag", "entity")
Node = tuple[str, str]  # (kind, name): ("source", "trips"), ("view", "x") or ("service", "y")


@dataclass(frozen=True)
class Graph:
    """Edges both ways: each node's parents and its children."""

    parents: dict[Node, frozenset[Node]]
    children: dict[Node, frozenset[Node]]

    def upstream(self, nodes: Iterable[Node]) -> set[Node]:
        """The nodes and all their ancestors."""
        return _closure(nodes, self.parents)

    def downstream(self, nodes: Iterable[Node]) -> set[Node]:
        """The nodes and all their descendants."""
        return _closure(nodes, self.children)


def project_graph(definitions: Definitions) -> Graph:
    """The source -> view -> service graph of a project's definitions.

    Example:
        >>> from fsql.compile import example_definitions
        >>> graph = project_graph(example_definitions())
        >>> sorted(graph.children[("source", "stats")])
        [('view', 'driver_stats')]
    """
    edges: list[tuple[Node, Node]] = [
        (("source", view.source), ("view", view.name)) for view in definitions.feature_views.values()
    ]
    for service in definitions.feature_services.values():
        for ref in service.features:
            # A derived view builds nothing: the service depends on the views its features read.
            derived = definitions.derived_views.get(ref.view)
            reads = [i.view for i in derived.inputs] if derived else [ref.view]
            edges.extend((("view", view), ("service", service.name)) for view in dict.fromkeys(reads))
    nodes: list[Node] = [
        *(("source", name) for name in definitions.sources),
        *(("view", name) for name in definitions.feature_views),
        *(("service", name) for name in definitions.feature_services),
    ]
    parents: dict[Node, set[Node]] = {node: set() for node in nodes}
    children: dict[Node, set[Node]] = {node: set() for node in nodes}
    for parent, child in edges:
        parents[child].add(parent)
        children[parent].add(child)
    return Graph(
        {node: frozenset(p) for node, p in parents.items()}, {node: frozenset(c) for node, c in children.items()}
    )


def select_views(definitions: Definitions, *, select: str | None = None, exclude: str | None = None) -> list[str]:
    """The names of the views a selection picks, in definition order; [] when it matches none.

    Raises:
        SelectionError: a part of the selection names something that does not exist.

    Example:
        >>> from fsql.compile import example_definitions
        >>> select_views(example_definitions(), select="driver_stats")
        ['driver_stats']
    """
    chosen = select_nodes(definitions, select=select, exclude=exclude)
    return [name for name in definitions.feature_views if ("view", name) in chosen]


def select_nodes(
    definitions: Definitions,
    *,
    select: str | None = None,
    exclude: str | None = None,
    kinds: tuple[str, ...] = ("view",),
) -> set[Node]:
    """The nodes of `kinds` a selection picks. `fsql test` asks for sources and views (their tests):
    `source:x` then picks x and the views reading it, `+view` a view and its source.

    Example:
        >>> from fsql.compile import example_definitions
        >>> sorted(select_nodes(example_definitions(), select="+driver_stats", kinds=("source", "view")))
        [('source', 'stats'), ('view', 'driver_stats')]
    """
    graph = project_graph(definitions)
    everything = {node for node in graph.parents if node[0] in kinds}
    chosen = everything if not select else _union(definitions, graph, select, kinds)
    if exclude:
        chosen -= _union(definitions, graph, exclude, kinds)
    return chosen


def _union(definitions: Definitions, graph: Graph, text: str, kinds: tuple[str, ...]) -> set[Node]:
    result: set[Node] = set()
    for part in text.split():
        sets = [_match(definitions, graph, item, kinds) for item in part.split(",") if item]
        result |= set.intersection(*sets) if sets else set()
    return result


def _match(definitions: Definitions, graph: Graph, item: str, kinds: tuple[str, ...]) -> set[Node]:
    """The nodes of `kinds` one selector picks, e.g. `+service:x` or `source:y+`."""
    upstream, downstream = item.startswith("+"), item.endswith("+") and len(item) > 1
    method, _, value = item.removeprefix("+").removesuffix("+").rpartition(":")
    method = method or "view"
    if method not in _METHODS:
        raise SelectionError(f"unknown selector method '{method}:' in '{item}'; use one of {', '.join(_METHODS)}")
    known = _known(definitions, method)
    if value not in known:
        hint = did_you_mean(value, known) or _listed(known)
        raise SelectionError(f"'{item}': {_UNKNOWN[method].format(value)}.{hint}")
    seeds = _seeds(definitions, method, value)
    nodes = set(seeds)
    # A source or a service is not built: by itself it stands for its views.
    if upstream or method == "service":
        nodes |= graph.upstream(seeds)
    if downstream or method == "source":
        nodes |= graph.downstream(seeds)
    return {node for node in nodes if node[0] in kinds}


_UNKNOWN = {
    "view": "there is no feature view '{}'",
    "source": "there is no source '{}'",
    "service": "there is no feature service '{}'",
    "tag": "no feature view has the tag '{}'",
    "entity": "there is no entity '{}'",
}


def _seeds(definitions: Definitions, method: str, value: str) -> set[Node]:
    views = definitions.feature_views.values()
    if method in ("view", "source", "service"):
        return {(method, value)}
    if method == "tag":
        return {("view", v.name) for v in views if value in v.tags}
    return {("view", v.name) for v in views if value in v.entities}


def _known(definitions: Definitions, method: str) -> set[str]:
    return {
        "view": set(definitions.feature_views),
        "source": set(definitions.sources),
        "service": set(definitions.feature_services),
        "tag": {t for v in definitions.feature_views.values() for t in v.tags},
        "entity": set(definitions.entities),
    }[method]


def _listed(names: set[str], most: int = 12) -> str:
    shown = sorted(names)[:most]
    return f" Known: {', '.join(shown)}{', ...' if len(names) > most else ''}." if names else ""


def _closure(nodes: Iterable[Node], edges: dict[Node, frozenset[Node]]) -> set[Node]:
    seen = set(nodes)
    todo = list(seen)
    while todo:
        for neighbour in edges.get(todo.pop(), frozenset()):
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return seen
