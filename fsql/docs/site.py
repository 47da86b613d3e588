"""Write the catalog to target/docs (index.html and catalog.json) and serve that folder."""

from __future__ import annotations

import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsql import artifacts
from fsql.errors import ProjectError, scrub_secrets

from .catalog import build_catalog
from .lineage import anchor, lineage_svg

if TYPE_CHECKING:
    from fsql.api import Project


def docs_dir(project: Project) -> Path:
    return project.config.target_dir / "docs"


def generate_docs(project: Project) -> Path:
    """Write target/docs/index.html (opens from file://, no server) and catalog.json, and
    target/manifest.json; return the page's path."""
    catalog = build_catalog(project)
    # manifest.json beside it describes the same definitions the page shows.
    artifacts.write_manifest(project.config.target_dir, project.config.name, project.definitions)
    out = docs_dir(project)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(catalog, indent=2, default=str)
    (out / "catalog.json").write_text(scrub_secrets(text) + "\n", encoding="utf-8")
    page = out / "index.html"
    page.write_text(scrub_secrets(render_page(catalog)), encoding="utf-8")
    return page


def render_page(catalog: dict[str, Any]) -> str:
    """The page for a catalog; every value is escaped by the template's autoescape."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    environment = Environment(
        loader=PackageLoader("fsql.docs", "."), autoescape=select_autoescape(["html"]), keep_trailing_newline=True
    )
    by_view: dict[str, list[dict[str, Any]]] = {}
    for row in catalog["features"]:
        by_view.setdefault(row["view"], []).append(row)
    return environment.get_template("index.html").render(
        c=catalog,
        features_of=by_view,
        # ElementTree escaped every name in the SVG; Markup keeps autoescape from escaping it twice.
        lineage=Markup(lineage_svg(catalog["lineage"])),
        anchor=anchor,
        search_text=_search_text,
    )


def _search_text(*parts: Any) -> str:
    """What the search box matches against: names, descriptions, tags, lower case."""
    words: list[str] = []
    for part in parts:
        if isinstance(part, list | tuple):
            words.extend(str(p) for p in part)
        elif part:
            words.append(str(part))
    return " ".join(words).lower()


def docs_server(directory: Path, *, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server for `directory` (call `serve_forever()`); port 0 picks a free one.

    Raises:
        ProjectError: there is no catalog in `directory` yet.
    """
    if not (directory / "index.html").is_file():
        raise ProjectError(f"no catalog in {directory}: run `fsql docs generate` first")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Files of the catalog folder only; no request log on stderr for every file."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
