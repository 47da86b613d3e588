"""The lineage graph as inline SVG: one column per kind (sources, views, derived views,
services), each node a link to its section of the page, each edge a curve from parent to child.

Built with ElementTree, so every name and attribute is escaped by the serializer. Rows within a
column are ordered by the mean row of their parents (one barycentre pass), which keeps most
edges short without a layout library.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .catalog import KINDS

_WIDTH = 200  # a node's box
_HEIGHT = 26
_COLUMN = 270  # from one column's left edge to the next
_ROW = 36
_TOP = 30  # room for the column titles
_TITLES = {"source": "sources", "view": "feature views", "derived": "derived views", "service": "feature services"}


def anchor(node_id: str) -> str:
    """The id of a node's section on the page: `view:x` -> `view-x`."""
    return node_id.replace(":", "-", 1)


def lineage_svg(lineage: dict[str, Any]) -> str:
    """The `lineage` of a catalog ({nodes, edges}) drawn as an `<svg>` element.

    Example:
        >>> svg = lineage_svg({"nodes": [{"id": "source:a", "kind": "source", "name": "a"},
        ...     {"id": "view:b", "kind": "view", "name": "b"}], "edges": [["source:a", "view:b"]]})
        >>> 'data-from="source:a" data-to="view:b"' in svg
        True
    """
    positions = _layout(lineage)
    columns = max((column for column, _ in positions.values()), default=0) + 1
    rows = max((row for _, row in positions.values()), default=0) + 1
    width, height = columns * _COLUMN, _TOP + rows * _ROW
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "id": "lineage-graph",
            "class": "lineage",
            "width": str(width),
            "height": str(height),
            "viewBox": f"0 0 {width} {height}",
            "role": "img",
            "aria-label": "lineage: sources, feature views, derived views and feature services",
        },
    )
    used = sorted({positions[n["id"]][0] for n in lineage["nodes"]})
    for kind in KINDS:
        column = KINDS.index(kind)
        if column in used:
            title = ET.SubElement(svg, "text", {"class": "column", "x": str(_x(column)), "y": "16"})
            title.text = _TITLES[kind]
    for parent, child in lineage["edges"]:
        _edge(svg, parent, child, positions)
    for node in lineage["nodes"]:
        _node(svg, node, positions[node["id"]])
    return ET.tostring(svg, encoding="unicode")


def _layout(lineage: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(column, row) of every node."""
    parents: dict[str, list[str]] = {}
    for parent, child in lineage["edges"]:
        parents.setdefault(child, []).append(parent)
    positions: dict[str, tuple[int, int]] = {}
    for column, kind in enumerate(KINDS):
        ids = [n["id"] for n in lineage["nodes"] if n["kind"] == kind]

        def weight(node_id: str, order: int) -> tuple[float, int]:
            rows = [positions[p][1] for p in parents.get(node_id, []) if p in positions]
            return (sum(rows) / len(rows) if rows else float(order), order)

        ranked = sorted(ids, key=lambda node_id: weight(node_id, ids.index(node_id)))
        positions.update({node_id: (column, row) for row, node_id in enumerate(ranked)})
    # Drop empty columns (a project without derived views): keep the kinds' order.
    used = sorted({column for column, _ in positions.values()})
    return {node_id: (used.index(column), row) for node_id, (column, row) in positions.items()}


def _x(column: int) -> int:
    return 10 + column * _COLUMN


def _y(row: int) -> int:
    return _TOP + row * _ROW


def _edge(svg: ET.Element, parent: str, child: str, positions: dict[str, tuple[int, int]]) -> None:
    (pc, pr), (cc, cr) = positions[parent], positions[child]
    x1, y1 = _x(pc) + _WIDTH, _y(pr) + _HEIGHT // 2
    x2, y2 = _x(cc), _y(cr) + _HEIGHT // 2
    middle = (x1 + x2) / 2
    path = ET.SubElement(
        svg,
        "path",
        {
            "class": "edge",
            "data-from": parent,
            "data-to": child,
            "d": f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}",
        },
    )
    ET.SubElement(path, "title").text = f"{parent} -> {child}"


def _node(svg: ET.Element, node: dict[str, str], position: tuple[int, int]) -> None:
    column, row = position
    link = ET.SubElement(
        svg, "a", {"href": f"#{anchor(node['id'])}", "class": f"node {node['kind']}", "data-node": node["id"]}
    )
    ET.SubElement(link, "title").text = f"{node['kind']} {node['name']}"
    ET.SubElement(
        link,
        "rect",
        {"x": str(_x(column)), "y": str(_y(row)), "width": str(_WIDTH), "height": str(_HEIGHT), "rx": "5"},
    )
    label = ET.SubElement(link, "text", {"x": str(_x(column) + 8), "y": str(_y(row) + 17)})
    label.text = node["name"] if len(node["name"]) <= 26 else node["name"][:25] + "…"
