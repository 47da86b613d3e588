"""`fsql docs`: the static catalog under target/docs (see README.md in this folder)."""

from __future__ import annotations

from .catalog import build_catalog, lineage_edges
from .lineage import lineage_svg
from .site import docs_dir, docs_server, generate_docs, render_page

__all__ = ["build_catalog", "docs_dir", "docs_server", "generate_docs", "lineage_edges", "lineage_svg", "render_page"]
