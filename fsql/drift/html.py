"""`fsql drift --html`: a static page (no server, no script) with the summary and, per feature,
a histogram of the reference against the current, drawn as inline SVG. The page template is
package data (report.html)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import EPSILON
from .run import DriftReport, Histogram

_HEIGHT = 160
_BAR = 14  # one side's bar width; a cell is two bars and a gap
_GAP = 10


@dataclass(frozen=True)
class _Bar:
    label: str
    x: int
    r: int
    c: int
    r_share: float
    c_share: float
    r_height: float
    c_height: float


@dataclass(frozen=True)
class _Chart:
    bars: list[_Bar]
    width: int
    height: int = _HEIGHT
    bar: int = _BAR


def write_html(report: DriftReport, path: Path) -> Path:
    """Write the report's page to `path` (its histograms come from `run_drift(..., histograms=True)`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(loader=PackageLoader("fsql.drift", "."), autoescape=select_autoescape(["html"]))
    charts = {f.feature: _chart(report.histograms.get(f.feature)) for f in report.features}
    page = environment.get_template("report.html").render(
        report=report, charts=charts, epsilon=EPSILON, pct=_pct, num=_num
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _chart(histogram: Histogram | None) -> _Chart | None:
    if histogram is None or not sum(histogram.reference) or not sum(histogram.current):
        return None
    r_total, c_total = sum(histogram.reference), sum(histogram.current)
    shares = [(r / r_total, c / c_total) for r, c in zip(histogram.reference, histogram.current, strict=True)]
    top = max(max(pair) for pair in shares) or 1.0
    bars = [
        _Bar(label, i * (2 * _BAR + _GAP), r, c, rs, cs, _HEIGHT * rs / top, _HEIGHT * cs / top)
        for i, (label, r, c, (rs, cs)) in enumerate(
            zip(histogram.labels, histogram.reference, histogram.current, shares, strict=True)
        )
    ]
    return _Chart(bars, width=len(bars) * (2 * _BAR + _GAP) + 60)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
