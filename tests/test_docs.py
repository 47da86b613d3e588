"""`fsql docs generate` / `fsql docs serve`: the static catalog under target/docs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from online_helpers import t, write_project, write_rows
from typer.testing import CliRunner

import fsql
from fsql.cli import app

runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"


def generate(root: Path, *args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["--project-dir", str(root), *args, "docs", "generate"])
    assert result.exit_code == 0, result.output
    docs = root / "target" / "docs"
    return json.loads((docs / "catalog.json").read_text()), (docs / "index.html").read_text()


def lineage_edges(html: str) -> set[tuple[str, str]]:
    """The edges drawn in the page's lineage picture (parsed as the SVG it is)."""
    svg = ET.fromstring(re.search(r"<svg .*?</svg>", html, re.S).group(0))  # type: ignore[union-attr]
    return {(p.get("data-from"), p.get("data-to")) for p in svg.iter(f"{SVG}path") if p.get("class") == "edge"}  # type: ignore[misc]


def test_the_catalog_holds_every_entity_source_view_feature_and_service(example_copy: Path) -> None:
    catalog, _ = generate(example_copy)
    definitions = fsql.load_project(example_copy).definitions
    assert set(catalog["entities"]) == set(definitions.entities)
    assert set(catalog["sources"]) == set(definitions.sources)
    assert set(catalog["feature_views"]) == set(definitions.feature_views)
    assert set(catalog["derived_views"]) == set(definitions.derived_views) == {"ride_offer"}
    assert set(catalog["feature_services"]) == set(definitions.feature_services)
    expected = {(v.name, f.name) for v in definitions.feature_views.values() for f in v.features}
    expected |= {(d.name, f.name) for d in definitions.derived_views.values() for f in d.features}
    assert {(f["view"], f["name"]) for f in catalog["features"]} == expected
    rows = {(f["view"], f["name"]): f for f in catalog["features"]}
    assert rows["rider_trip_windows", "trips_7d"] == {
        "view": "rider_trip_windows", "view_kind": "view", "name": "trips_7d", "type": "bigint",
        "description": "", "owner": "", "tags": ["rider"], "ttl": None, "function": "count",
        "aggregation": "trips", "window": "7d", "granularity": "1h", "expr": "",
    }  # fmt: skip
    conv_rate = rows["driver_hourly_stats", "conv_rate"]
    assert (conv_rate["ttl"], conv_rate["owner"]) == ("2d", "dispatch-ml@rides.example")
    assert conv_rate["description"] == "Share of offers that became trips over the last hour."
    assert rows["ride_offer", "is_big_fare"]["type"] == "boolean"
    assert catalog["run_results"] is None  # nothing was built
    manifest = json.loads((example_copy / "target" / "manifest.json").read_text())
    assert set(manifest["feature_views"]) == set(catalog["feature_views"])
    # Which services a source feeds, through its views and the derived view reading them.
    assert catalog["sources"]["completed_trips"]["feeds"] == {
        "view": ["driver_trip_windows", "rider_trip_windows"],
        "derived": ["ride_offer"],
        "service": ["ride_acceptance", "driver_quality", "ride_offer_scoring"],
    }


def test_the_sql_shown_is_what_build_and_compile_write_and_results_come_from_the_last_build(
    seeded_example: Path, tmp_path: Path
) -> None:
    root = shutil.copytree(seeded_example, tmp_path / "p", ignore=shutil.ignore_patterns("target"))
    built = runner.invoke(app, ["--project-dir", str(root), "-t", "file", "build"])
    assert built.exit_code == 0, built.output
    catalog, html = generate(root, "-t", "file")
    compiled = root / "target" / "compiled" / "duckdb"
    for name, view in catalog["feature_views"].items():
        assert view["compiled_sql"] == (compiled / "materialize" / f"{name}.sql").read_text(), name
        assert view["build"]["status"] == "skipped"  # the file target has no online store
    for name, service in catalog["feature_services"].items():
        assert service["compiled_path"] == f"target/compiled/duckdb/{name}.sql"
        assert service["compiled_sql"] == (compiled / f"{name}.sql").read_text()
        assert "<code>" + _escaped(service["compiled_sql"][:60]) in html
    assert catalog["run_results"]["path"] == "target/run_results.json"
    assert "no online store configured for target" in html


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")


def test_the_page_escapes_user_text(example_copy: Path) -> None:
    riders = example_copy / "definitions" / "riders.yml"
    hostile = '<script>alert(1)</script> & "quoted" <b>bold</b>'
    text = riders.read_text()
    old = "description: The rider's completed trips, spend and ratings over the last 7 and 30 days."
    assert old in text
    riders.write_text(text.replace(old, f"description: '{hostile}'"))
    catalog, html = generate(example_copy)
    assert catalog["feature_views"]["rider_trip_windows"]["description"] == hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert" not in html and "<b>bold" not in html
    assert html.count("<script") == 1  # the page's own


def test_the_lineage_picture_draws_source_view_derived_view_service(example_copy: Path) -> None:
    _, html = generate(example_copy)
    edges = lineage_edges(html)
    assert ("source:completed_trips", "view:rider_trip_windows") in edges
    assert ("view:rider_trip_windows", "service:ride_acceptance") in edges
    assert ("view:rider_trip_windows", "derived:ride_offer") in edges
    assert ("derived:ride_offer", "service:ride_offer_scoring") in edges
    assert ("view:rider_trip_windows", "service:ride_offer_scoring") in edges  # also read directly
    assert ("source:completed_trips", "service:ride_acceptance") not in edges  # only through a view
    # Each box links to its section of the page.
    svg = ET.fromstring(re.search(r"<svg .*?</svg>", html, re.S).group(0))  # type: ignore[union-attr]
    targets = {a.get("href") for a in svg.iter(f"{SVG}a")}
    assert "#view-rider_trip_windows" in targets and "#derived-ride_offer" in targets
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert {target.removeprefix("#") for target in targets} <= ids  # type: ignore[union-attr]


def test_docs_serve_serves_the_catalog(example_copy: Path) -> None:
    generate(example_copy)
    command = [str(Path(sys.executable).parent / "fsql"), "--project-dir", str(example_copy), "docs", "serve"]
    server = subprocess.Popen([*command, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        said = server.stderr.readline()  # printed once the socket listens
        url = re.search(r"http://\S+/", said).group(0)  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "index.html") as response:
            assert response.status == 200
            assert "fsql catalog: rides" in response.read().decode()
        with urllib.request.urlopen(url + "catalog.json") as response:
            assert "rider_trip_windows" in json.loads(response.read())["feature_views"]
    finally:
        server.terminate()
        server.wait()


def test_docs_serve_without_a_catalog_says_to_generate_it(example_copy: Path) -> None:
    result = runner.invoke(app, ["--project-dir", str(example_copy), "docs", "serve", "--port", "0"])
    assert result.exit_code == 2
    assert "run `fsql docs generate` first" in " ".join(result.stderr.split())


DEFINITIONS = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    path: data/stats.parquet
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {driver_id: bigint, event_ts: timestamp, created_ts: timestamp, rate: double, label: string}
    tests: [{freshness: {error_after: 1d}}]
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    online: true
    features:
      - {name: rate, type: double, tests: [{accepted_range: {min: 0, max: 1}}]}
  - name: driver_other
    entities: [driver]
    source: stats
    online: true
    features:
      - {name: label, type: string}
"""


def test_the_catalog_shows_the_last_builds_rows_watermarks_and_test_results(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, DEFINITIONS)
    write_rows(root, [(1, t(1), t(1), 0.2, "a"), (2, t(2), t(2), 1.4, "b")])  # 1.4 is out of [0, 1]
    built = runner.invoke(app, ["--project-dir", str(root), "build", "--end", "2024-03-02T01:00:00Z"])
    assert built.exit_code == 1, built.output  # driver_stats is stopped by its failing test
    catalog, html = generate(root)
    other, stats = catalog["feature_views"]["driver_other"], catalog["feature_views"]["driver_stats"]
    assert (other["build"]["status"], other["build"]["rows_written"]) == ("success", 2)
    assert other["build"]["watermark"].startswith("2024-03-02T00:00:00")
    assert stats["build"]["status"] == "error"
    assert [(r["unique_id"], r["status"]) for r in stats["tests"]] == [
        ("test.accepted_range_driver_stats_rate", "fail")
    ]
    assert [(r["unique_id"], r["status"]) for r in catalog["sources"]["stats"]["tests"]] == [
        ("test.freshness_stats", "pass")
    ]
    assert "online watermark 2024-03-02T00:00:00" in html
    assert '<td class="fail">fail</td>' in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Dom(HTMLParser):
    """Elements by id from a DOM dump: their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.nodes: dict[str, str] = {}  # lineage node -> its class attribute
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.by_id[str(found["id"])] = found
        if found.get("data-node"):
            self.nodes[str(found["data-node"])] = str(found.get("class"))


@pytest.mark.browser
def test_in_a_real_browser_the_search_filters_and_the_lineage_renders(example_copy: Path, tmp_path: Path) -> None:
    """Headless Chromium opens the page from file:// with #q=trips; the DOM after its script ran
    shows the matching features and hides the others."""
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("no chromium or chromium-browser on PATH (apt-get install -y chromium)")
    catalog, _ = generate(example_copy)
    url = (example_copy / "target" / "docs" / "index.html").resolve().as_uri() + "#q=trips"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chromium'}"]
    dumped = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, check=True).stdout
    dom = _Dom()
    dom.feed(dumped)
    # Written by the script: absent from the HTML file.
    assert re.search(rf"\d+ of {len(catalog['features'])} features match", dumped), dumped[:2000]
    assert "hidden" not in dom.by_id["f-rider_trip_windows-trips_7d"]
    assert "hidden" not in dom.by_id["f-driver_hourly_stats-conv_rate"]  # its description says trips
    assert "hidden" in dom.by_id["f-driver_profile-vehicle_type"]
    assert "hidden" in dom.by_id["view-driver_profile"]
    assert "hidden" not in dom.by_id["view-rider_trip_windows"]
    assert "lineage-graph" in dom.by_id and "svg" in dom.tags
    # A source's section in the address (where a click on its box goes) lights what it feeds.
    page = (example_copy / "target" / "docs" / "index.html").resolve().as_uri()
    dumped = subprocess.run(
        [*flags, "--dump-dom", page + "#source-zone_demand"], capture_output=True, text=True, check=True
    )
    lit = _Dom()
    lit.feed(dumped.stdout)
    assert {node for node, classes in lit.nodes.items() if "lit" in classes.split()} == {
        "source:zone_demand", "view:zone_demand", "service:ride_acceptance"
    }  # fmt: skip
    screenshot = REPO / "target" / "docs-screenshot.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*flags, "--window-size=1400,1600", f"--screenshot={screenshot}", url], capture_output=True, check=True
    )
    assert screenshot.read_bytes().startswith(b"\x89PNG")
