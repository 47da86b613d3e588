"""A view's materialization state, and what the next run reads: decided by the source, not the clock.

The watermark is the newest event time a run actually read (and, for sources with a
created time, the newest created time), never the requested end: an empty run, or one
with an `--end` far ahead, leaves it where the data put it. A run reads the rows with
event time after `watermark - lateness`, or created after `created_watermark - lateness`
(corrections), up to its end. Rows behind that reach are counted at every run; when more
are there than the last run left behind, rows arrived late, and the run reads everything
again (never-back-in-time upserts make that safe) and reports how many.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlglot import exp

from fsql.online.tables import STATE_TABLE, OnlineTable, table_ref


@dataclass(frozen=True)
class ViewState:
    """A row of `_fsql_state`, as the last run left it."""

    watermark: datetime | None = None
    created_watermark: datetime | None = None
    behind_rows: int | None = None
    fingerprint: str | None = None

    def reach(self, lateness: timedelta) -> tuple[datetime | None, datetime | None]:
        """Event and created times after which the next run reads rows."""
        return (
            self.watermark - lateness if self.watermark else None,
            self.created_watermark - lateness if self.created_watermark else None,
        )


@dataclass(frozen=True)
class ReadWindow:
    """What one run reads: rows after `start` (or created after `start_created`) up to `end`."""

    start: datetime | None
    start_created: datetime | None
    end: datetime
    # Whether the rows behind this window were all read before, so the watermark may move.
    joins_up: bool = True
    note: str = ""

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "start_created": self.start_created, "end": self.end}

    def everything(self, note: str) -> ReadWindow:
        return replace(self, start=None, start_created=None, joins_up=True, note=note)


@dataclass(frozen=True)
class SourceState:
    """What the source-state query saw (see `fsql.compile.watermark`)."""

    newest_event: datetime | None
    newest_created: datetime | None
    behind_before: int
    behind_after: int


def incremental_window(
    previous: ViewState, *, end: datetime, start: datetime | None, lateness: timedelta
) -> ReadWindow:
    """The window of an incremental run, or of an explicit `--start` one."""
    event_reach, created_reach = previous.reach(lateness)
    if start is None:
        return ReadWindow(event_reach, created_reach, end)
    joins_up = event_reach is not None and start <= event_reach
    note = "" if joins_up else "explicit window: the watermark stays, as rows before the window were not read"
    return ReadWindow(start, None, end, joins_up=joins_up, note=note)


def late_rows(previous: ViewState, source: SourceState) -> int:
    """Rows behind the last run's reach that it did not count: they arrived late."""
    if previous.behind_rows is None or previous.watermark is None:
        return 0
    return max(source.behind_before - previous.behind_rows, 0)


def next_state(previous: ViewState, window: ReadWindow, source: SourceState, fingerprint: str) -> ViewState:
    """The state after a run: watermarks moved to the newest times read, if the window joins up."""
    if not window.joins_up:
        return replace(previous, fingerprint=fingerprint)
    return ViewState(
        watermark=_later(previous.watermark, source.newest_event),
        created_watermark=_later(previous.created_watermark, source.newest_created),
        behind_rows=source.behind_after,
        fingerprint=fingerprint,
    )


def warnings(
    window: ReadWindow, source: SourceState, rows_read: int, late: int, previous: ViewState, lateness: timedelta
) -> list[str]:
    """What a data engineer should hear about a run that succeeded."""
    said = []
    if late:
        said.append(
            f"{late:,} row{'s' if late != 1 else ''} arrived behind the watermark "
            f"({_iso(previous.watermark)}, lateness {_seconds(lateness)}): all rows were read again to load them; "
            f"set `lateness:` on the view to how late rows arrive to keep runs incremental"
        )
    elif previous.behind_rows is not None and source.behind_before < previous.behind_rows:
        gone = previous.behind_rows - source.behind_before
        said.append(
            f"{gone:,} source rows behind the watermark are gone since the last run (deleted or rewritten): "
            f"online values are kept; run with --full-refresh to rebuild from the source as it is"
        )
    if rows_read == 0 and previous.watermark is None and source.newest_event is None:
        said.append(
            f"read no rows: the source holds none up to {_iso(window.end)}, so nothing is online for this view yet "
            f"(the next run reads from the beginning)"
        )
    if window.end > datetime.now(UTC) + timedelta(minutes=1):
        said.append(
            f"--end {_iso(window.end)} is in the future: rows are read up to it, and the watermark is the newest "
            f"event read ({_iso(source.newest_event)}), so later rows are still loaded by the next run"
        )
    return said


def read_state(cursor: Any, table: OnlineTable) -> ViewState:
    select = (
        exp.select(
            *(exp.column(c, quoted=True) for c in ("watermark", "created_watermark", "behind_rows", "fingerprint"))
        )
        .from_(table_ref(table.schema, STATE_TABLE))
        .where(exp.EQ(this=exp.column("view", quoted=True), expression=exp.Placeholder()))
    )
    cursor.execute(select.sql("postgres"), (table.name,))
    row = cursor.fetchone()
    return ViewState(*row) if row else ViewState()


def write_state(cursor: Any, table: OnlineTable, state: ViewState, *, rows: int, late: int, end: datetime) -> None:
    values = {
        "view": table.name,
        "watermark": state.watermark,
        "created_watermark": state.created_watermark,
        "behind_rows": state.behind_rows,
        "fingerprint": state.fingerprint,
        "rows": rows,
        "late_rows": late,
        "requested_end": end,
    }
    names = [exp.to_identifier(n, quoted=True) for n in values]
    excluded = exp.to_identifier("excluded")  # Postgres's name for the proposed row; must stay unquoted
    updates = [
        exp.EQ(this=exp.column(n.this, quoted=True), expression=exp.Column(this=n.copy(), table=excluded.copy()))
        for n in names[1:]
    ]
    updates.append(exp.EQ(this=exp.column("finished_at", quoted=True), expression=exp.func("now")))
    insert = exp.Insert(
        this=exp.Schema(
            this=table_ref(table.schema, STATE_TABLE),
            expressions=[*names, exp.to_identifier("finished_at", quoted=True)],
        ),
        expression=exp.Values(
            expressions=[exp.Tuple(expressions=[*(exp.Placeholder(this=n) for n in values), exp.func("now")])]
        ),
        conflict=exp.OnConflict(
            conflict_keys=[exp.to_identifier("view", quoted=True)], action=exp.var("DO UPDATE"), expressions=updates
        ),
    )
    cursor.execute(insert.sql("postgres"), values)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((m for m in (a, b) if m is not None), default=None)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "none"


def _seconds(lateness: timedelta) -> str:
    return f"{int(lateness.total_seconds())}s"
