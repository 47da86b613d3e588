"""Rendering `fsql skew`: a summary table per view, the disagreements, JSON on request, the exit code."""

from __future__ import annotations

import json
from typing import Any

import typer

from fsql import console
from fsql.api import Project
from fsql.skew.report import SkewReport

_SHOWN = 20  # disagreements listed per view in the table output; JSON lists all


def show_skew(project: Project, report: SkewReport, *, output: str) -> None:
    """Print the report (a table on stderr, or JSON on stdout); exit 1 when something disagrees."""
    if output == "json":
        typer.echo(json.dumps(report.as_json(), indent=2, allow_nan=False))
    else:
        _tables(report)
    for note in report.notes:
        console.warning(note)
    found = len(report.disagreements)
    results = project.config.target_dir / "run_results.json"
    console.info(
        f"{found} disagreement(s) over {len(report.entities)} entities of '{report.service}' at "
        f"{report.at.isoformat()} in {report.seconds:.2f} s; results in {results}"
    )
    if found:
        raise typer.Exit(1)


def _tables(report: SkewReport) -> None:
    from rich.table import Table

    summary = Table(
        "feature view", "kind", "lookup at", "offline at", "sampled", "from training", "compared", "disagreements",
        "status",
        title=f"fsql skew {report.service}", title_justify="left",
    )  # fmt: skip
    for view in report.views:
        summary.add_row(
            view.view,
            view.kind,
            _time(view.lookup_at),
            _time(view.offline_at),
            f"{view.sampled:,}",
            f"{view.from_training:,}",
            f"{view.compared:,}",
            f"{len(view.disagreements):,}",
            view.status,
        )
    console.err.print(summary)
    if not report.disagreements:
        return
    details = Table("feature view", "feature", "entity", "online", "offline", "online status", title="disagreements")
    for view in report.views:
        for said in view.disagreements[:_SHOWN]:
            entity = ", ".join(f"{k}={v}" for k, v in said.entity.items())
            shown = (_value(said.online), _value(said.offline))
            details.add_row(view.view, said.feature, entity, *shown, said.online_status)
        if len(view.disagreements) > _SHOWN:
            more = f"... {len(view.disagreements) - _SHOWN} more (see --output json)"
            details.add_row(view.view, more, "", "", "", "")
    console.err.print(details)


def _time(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _value(value: Any) -> str:
    return "NULL" if value is None else str(value)
