"""The catalog's content: the manifest's description of every definition (`fsql.artifacts.describe`),
the derived views, one row per feature, the compiled SQL of each view and service, the lineage,
and what the last `fsql build` / `fsql test` wrote to target/run_results.json.

All of it is JSON-ready data: `catalog.json` is this dict, and the page renders it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsql import artifacts
from fsql.build import materialize_sql
from fsql.spec import Definitions

if TYPE_CHECKING:
    from fsql.api import Project

Node = str  # "source:trips", "view:x", "derived:y", "service:z"
KINDS = ("source", "view", "derived", "service")


def build_catalog(project: Project) -> dict[str, Any]:
    """Everything the catalog shows, compiled for the target's dialect."""
    definitions = project.definitions
    dialect = project.config.target.dialect
    described = artifacts.describe(definitions)
    results = read_run_results(project.config.target_dir / "run_results.json")
    lineage = lineage_edges(definitions)
    views = described["feature_views"]
    root = project.config.root
    for name, view in views.items():
        sql = materialize_sql(definitions, name, dialect=dialect)
        view["compiled_sql"] = sql
        view["compiled_path"] = f"target/compiled/{dialect}/materialize/{name}.sql" if sql is not None else None
        view["build"] = results["builds"].get(name)
        view["tests"] = results["tests"].get(f"feature_view.{name}", [])
    for name, source in described["sources"].items():
        source["tests"] = results["tests"].get(f"source.{name}", [])
        reached = downstream(lineage, f"source:{name}")
        source["feeds"] = {
            kind: [n.split(":", 1)[1] for n in reached if n.startswith(f"{kind}:")] for kind in KINDS[1:]
        }
    for name, service in described["feature_services"].items():
        compiled, path = project.compile(service=name, dialect=dialect, data_checks=False)
        service["compiled_sql"] = compiled.sql
        service["compiled_path"] = _relative(path, root)
        service["reads"] = [n for n in upstream(lineage, f"service:{name}") if n != f"service:{name}"]
    return {
        "metadata": artifacts.metadata(),
        "project": project.config.name,
        **described,
        "features": feature_rows(described),
        "lineage": {"nodes": lineage_nodes(definitions), "edges": [list(edge) for edge in lineage]},
        "run_results": results["about"],
    }


def feature_rows(described: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per feature of every view and derived view, with what it inherits from its view."""
    rows: list[dict[str, Any]] = []
    for name, view in described["feature_views"].items():
        for feature, f in view["features"].items():
            rows.append(
                {
                    "view": name,
                    "view_kind": "view",
                    "name": feature,
                    "type": f["type"],
                    "description": f["description"] or "",
                    "owner": view["owner"] or "",
                    "tags": view["tags"],
                    "ttl": view["ttl"],
                    "function": f.get("function"),
                    "aggregation": f.get("aggregation"),
                    "window": f.get("window"),
                    "granularity": view["granularity"],
                    "expr": f["expr"],
                }
            )
    for name, view in described["derived_views"].items():
        for feature, f in view["features"].items():
            rows.append(
                {
                    "view": name,
                    "view_kind": "derived",
                    "name": feature,
                    "type": f["type"],
                    "description": f["description"] or "",
                    "owner": view["owner"] or "",
                    "tags": view["tags"],
                    "ttl": None,
                    "function": None,
                    "aggregation": None,
                    "window": None,
                    "granularity": None,
                    "expr": f["expr"],
                }
            )
    return rows


def lineage_nodes(definitions: Definitions) -> list[dict[str, str]]:
    """The nodes of the lineage in columns: sources, views, derived views, services."""
    names: tuple[Iterable[str], ...] = (
        definitions.sources,
        definitions.feature_views,
        definitions.derived_views,
        definitions.feature_services,
    )
    return [
        {"id": f"{kind}:{name}", "kind": kind, "name": name}
        for kind, group in zip(KINDS, names, strict=True)
        for name in group
    ]


def lineage_edges(definitions: Definitions) -> list[tuple[Node, Node]]:
    """source -> view -> derived view -> service. Unlike `fsql.graph.project_graph` (which builds
    nothing for a derived view, so skips it), a derived view is a node here: people ask what it reads.

    Example:
        >>> from fsql.compile import example_definitions
        >>> ("source:stats", "view:driver_stats") in lineage_edges(example_definitions())
        True
    """
    edges: dict[tuple[Node, Node], None] = {}
    for view in definitions.feature_views.values():
        edges[(f"source:{view.source}", f"view:{view.name}")] = None
    for derived in definitions.derived_views.values():
        for item in derived.inputs:
            edges[(f"view:{item.view}", f"derived:{derived.name}")] = None
    for service in definitions.feature_services.values():
        for ref in service.features:
            kind = "derived" if ref.view in definitions.derived_views else "view"
            edges[(f"{kind}:{ref.view}", f"service:{service.name}")] = None
    return list(edges)


def downstream(edges: list[tuple[Node, Node]], node: Node) -> list[Node]:
    """The nodes `node` feeds, directly or not, in the order they were reached."""
    return _walk(edges, node, forward=True)


def upstream(edges: list[tuple[Node, Node]], node: Node) -> list[Node]:
    """The nodes feeding `node`, directly or not."""
    return _walk(edges, node, forward=False)


def _walk(edges: list[tuple[Node, Node]], node: Node, *, forward: bool) -> list[Node]:
    seen: dict[Node, None] = {}
    todo = [node]
    while todo:
        here = todo.pop(0)
        for parent, child in edges:
            start, end = (parent, child) if forward else (child, parent)
            if start == here and end not in seen:
                seen[end] = None
                todo.append(end)
    return list(seen)


def read_run_results(path: Path) -> dict[str, Any]:
    """The last build's node per view and the data test results per node from run_results.json
    (either may be missing: `fsql test` writes tests only; no file, nothing)."""
    found: dict[str, Any] = {"about": None, "builds": {}, "tests": {}}
    if not path.is_file():
        return found
    document = json.loads(path.read_text(encoding="utf-8"))
    found["about"] = {
        "generated_at": document.get("metadata", {}).get("generated_at"),
        "elapsed_time": document.get("elapsed_time"),
        "path": "target/run_results.json",
    }
    for result in document.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        if "test" in result:
            found["tests"].setdefault(result["test"].get("attached_node"), []).append(result)
        elif unique_id.startswith("feature_view."):
            found["builds"][unique_id.removeprefix("feature_view.")] = result
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
