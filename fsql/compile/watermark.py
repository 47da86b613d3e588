"""What a materialization run learns about its source before it reads: one aggregate query.

A run reads the rows in its read window (`latest.read_window`). The next run can reach
every row with event time after `event_reach` (its watermark less the lateness) or, when
the source has a created time, created after `created_reach`; the rest is *behind* it.
This query returns, in one snapshot of the source:

- `newest_event`, `newest_created`: the greatest event and created times in the window,
  which become the next watermark (what was read decides it, never the requested end);
- `behind_before`: the rows now behind the reach of the last run (bound as `event_reach`,
  `created_reach`). More than that run counted arrived late, behind its watermark;
- `behind_after`: the rows behind the reach this run leaves for the next one, computed from
  the new watermark (bound: `watermark`, `created_watermark`) less the lateness.

Counting both in one statement matters: a row landing between two queries would be counted
in neither difference and never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlglot import exp

from fsql.compile.context import CREATED_TS, EVENT_TS, column, ident, rows_cte_name
from fsql.compile.latest import bound, for_engine, parameter_names, read_window, view_request
from fsql.compile.passes import feature_rows
from fsql.spec import Definitions

NEWEST_EVENT = "newest_event"
NEWEST_CREATED = "newest_created"
BEHIND_BEFORE = "behind_before"
BEHIND_AFTER = "behind_after"
_NEWEST = "_fsql_newest"
_REACH = "_fsql_reach"


@dataclass(frozen=True)
class SourceStateQuery:
    view: str
    dialect: str
    sql: str
    parameters: frozenset[str]


def compile_source_state(
    definitions: Definitions,
    view_name: str,
    *,
    dialect: str,
    lateness: timedelta = timedelta(0),
    file_root: Path | None = None,
) -> SourceStateQuery:
    """The query of newest times in the read window and of rows behind each reach.

    Example:
        >>> from fsql.compile import example_definitions
        >>> q = compile_source_state(example_definitions(), "driver_stats", dialect="duckdb")
        >>> '"behind_after"' in q.sql and '$event_reach' in q.sql
        True
    """
    request = view_request(definitions, view_name)
    has_created = request.source.created_timestamp is not None
    rows = ident(rows_cte_name(request))
    event = column(EVENT_TS)
    created = column(CREATED_TS) if has_created else exp.cast(exp.Null(), "TIMESTAMPTZ")
    newest = exp.select(
        exp.alias_(_max_where(event, read_window(request)), NEWEST_EVENT, quoted=True),
        exp.alias_(_max_where(created, read_window(request)), NEWEST_CREATED, quoted=True),
    ).from_(exp.Table(this=rows.copy()))
    reach = exp.select(
        column(NEWEST_EVENT),
        column(NEWEST_CREATED),
        exp.alias_(_less(_later(bound("watermark"), column(NEWEST_EVENT)), lateness), "event_reach", quoted=True),
        exp.alias_(
            _less(_later(bound("created_watermark"), column(NEWEST_CREATED)), lateness), "created_reach", quoted=True
        ),
    ).from_(exp.Table(this=ident(_NEWEST)))
    before = _behind(bound("event_reach"), bound("created_reach"), has_created)
    after = _behind(column("event_reach", _REACH), column("created_reach", _REACH), has_created)
    query = (
        exp.select(
            exp.alias_(_instant(exp.func("MAX", column(NEWEST_EVENT, _REACH))), NEWEST_EVENT, quoted=True),
            exp.alias_(_instant(exp.func("MAX", column(NEWEST_CREATED, _REACH))), NEWEST_CREATED, quoted=True),
            exp.alias_(_count_where(before), BEHIND_BEFORE, quoted=True),
            exp.alias_(_count_where(after), BEHIND_AFTER, quoted=True),
        )
        .from_(exp.Table(this=ident(_REACH)))
        .join(exp.Table(this=rows.copy()), join_type="CROSS")
        .with_(rows.copy(), as_=feature_rows(request, definitions.dialect))
        .with_(ident(_NEWEST), as_=newest)
        .with_(ident(_REACH), as_=reach)
    )
    # Over an empty source the cross join is empty; the aggregates still give one row.
    from fsql.compile import render

    header = [f"fsql source state of feature view '{view_name}': newest times read, rows behind each reach"]
    sql = render(for_engine(query, definitions, dialect, file_root), dialect, header)
    return SourceStateQuery(view_name, dialect, sql, parameter_names(query))


def _instant(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, "TIMESTAMPTZ")


def _max_where(value: exp.Expr, condition: exp.Expr) -> exp.Expr:
    return exp.func("MAX", exp.Case(ifs=[exp.If(this=condition, true=value.copy())]))


def _count_where(condition: exp.Expr) -> exp.Expr:
    return exp.func("COUNT", exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]))


def _later(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """The later of two instants, either of which may be NULL (GREATEST's NULLs differ by dialect)."""
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=a.copy(), expression=exp.Null()), true=b.copy()),
            exp.If(this=exp.Is(this=b.copy(), expression=exp.Null()), true=a.copy()),
            exp.If(this=exp.GTE(this=a.copy(), expression=b.copy()), true=a.copy()),
        ],
        default=b.copy(),
    )


def _less(moment: exp.Expr, lateness: timedelta) -> exp.Expr:
    seconds = int(lateness.total_seconds())
    if not seconds:
        return moment
    return exp.TimestampSub(this=moment, expression=exp.Literal.number(seconds), unit=exp.Var(this="SECOND"))


def _behind(event_reach: exp.Expr, created_reach: exp.Expr, has_created: bool) -> exp.Expr:
    """A row the next read cannot reach: event at or before the reach, and not created after it."""
    event_behind = exp.LTE(this=column(EVENT_TS), expression=event_reach)
    if not has_created:
        return event_behind
    not_created_after = exp.or_(
        exp.Is(this=column(CREATED_TS), expression=exp.Null()),
        exp.Is(this=created_reach.copy(), expression=exp.Null()),
        exp.LTE(this=column(CREATED_TS), expression=created_reach.copy()),
    )
    return exp.and_(event_behind, exp.paren(not_created_after, copy=False))
