"""Rendering `fsql drift`: options -> sides, the run, a summary table or JSON, the exit code."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import typer

from fsql import console
from fsql.api import Project
from fsql.drift.run import DriftReport, Side, run_drift
from fsql.errors import ProjectError


def parse_window(text: str, option: str) -> tuple[datetime, datetime]:
    """`START..END` (ISO 8601, naive means UTC): the half-open window [START, END)."""
    start, dots, end = text.partition("..")
    if not dots:
        raise ProjectError(f"{option} '{text}' is not a window: write START..END, e.g. 2024-03-01..2024-03-08")
    try:
        times = [datetime.fromisoformat(part.strip()) for part in (start, end)]
    except ValueError:
        raise ProjectError(f"{option} '{text}': START and END must be ISO 8601 times, e.g. 2024-03-01T00:00Z") from None
    low, high = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)
    if low >= high:
        raise ProjectError(f"{option} '{text}': START must come before END")
    return low, high


def side(file: Path | None, window: str | None, name: str) -> Side:
    if (file is None) == (window is None):
        raise ProjectError(
            f"give the {name} side as --{name} FILE (a training set, e.g. target/training/<service>.parquet) "
            f"or as --{name}-window START..END over --spine, exactly one of them"
        )
    return Side(file=file) if file is not None else Side(window=parse_window(str(window), f"--{name}-window"))


def run(project: Project, *, service: str, reference: Side, current: Side, spine: str | None,
        spine_timestamp: str, output: str, html: Path | None) -> None:  # fmt: skip
    """Run and show the drift report; exit 1 when a feature drifted significantly or has too many NULLs."""
    if output not in ("table", "json"):
        raise ProjectError(f"--output must be 'table' or 'json', not '{output}'")
    report = run_drift(
        project,
        service=service,
        reference=reference,
        current=current,
        spine=spine,
        spine_timestamp=spine_timestamp,
        histograms=html is not None,
    )
    if html is not None:
        from fsql.drift.html import write_html

        write_html(report, html)
        console.info(f"wrote {html}")
    if output == "json":
        typer.echo(json.dumps(report.as_json(), indent=2, default=str))
    else:
        _table(report)
    if report.failed:
        raise typer.Exit(1)


def _table(report: DriftReport) -> None:
    from rich.table import Table

    title = f"fsql drift {report.service}: {report.reference} -> {report.current}"
    table = Table(
        "feature", "kind", "nulls ref", "nulls cur", "PSI", "KS", "chi2", "status", "why",
        title=title, title_justify="left",
    )  # fmt: skip
    for f in report.features:
        table.add_row(
            f.feature, f.kind, _pct(f.null_rate_reference), _pct(f.null_rate_current), _num(f.psi), _num(f.ks),
            _num(f.chi2, 1), f.status, "; ".join(f.reasons),
        )  # fmt: skip
    console.err.print(table)
    for name, why in report.skipped:
        console.info(f"left out {name}: {why}")
    counts = {s: sum(f.status == s for f in report.features) for s in ("significant", "nulls", "moderate", "ok")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items())
    compared = f"{len(report.features)} features compared in {report.seconds:.2f} s"
    console.info(f"{compared}: {said}; SQL in {report.sql_path}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"
