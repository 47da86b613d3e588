"""`fsql skew`: sample entities from the online tables, look them up, and compare with training values.

1. Read each view's build state and sample up to N keys of its online table (`online_side`).
2. Pick the lookup time: `at`, default now clamped to the newest build end among the service's
   views, refused when the store cannot answer for it (before a latest-value view's watermark,
   before an aggregate view's kept tiles).
3. Look the entity rows up online, per lookup time: `at` for aggregate views; for a latest-value
   view `min(at, its build end)`, the time its rows answer for, so the ttl is read at the same
   instant on both sides.
   Beside each view's online sample come up to N entities training has that the sample lacks
   (`offline_side`), so rows missing online are met too; `online_side.entity_rows` composes
   every view's entities into rows carrying all of the service's keys.
4. Build the training set of the same features on a spine at each view's time: a latest-value
   view's lookup time, an aggregate view's as_of. A latest-value view's row is also read with
   the materialization query at that time, to tell "no row" from a row of NULLs.
5. Compare every value (`compare.same`), and say which view, feature and entity disagree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from fsql import artifacts
from fsql.compile.request import FeatureRequest, ViewRequest, resolve_features
from fsql.compile.spine import DEFAULT_SPINE_TIMESTAMP
from fsql.engines import open_engine
from fsql.errors import ProjectError
from fsql.online.lookup import refuse_offline_views
from fsql.online.result import FeatureStatus, ViewLookup
from fsql.skew.compare import same, utc
from fsql.skew.offline_side import TrainingEntities, training_entities, with_training
from fsql.skew.online_side import BuiltState, entity_rows, read_built_states, sample_keys, table_exists
from fsql.skew.report import EVENT_TIME, ROW, Disagreement, SkewReport, ViewSkew
from fsql.spec import Column, FeatureView

if TYPE_CHECKING:
    from fsql.api import Project
    from fsql.online.lookup import OnlineStore

_ROW_ID = "_fsql_skew_row"
_ARROW_TYPES: dict[exp.DType, pa.DataType] = {
    exp.DType.BIGINT: pa.int64(),
    exp.DType.INT: pa.int32(),
    exp.DType.TEXT: pa.string(),
    exp.DType.BOOLEAN: pa.bool_(),
    exp.DType.DOUBLE: pa.float64(),
    exp.DType.FLOAT: pa.float32(),
    exp.DType.DATE: pa.date32(),
    exp.DType.TIMESTAMP: pa.timestamp("us"),
    exp.DType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}


def run_skew(
    project: Project, *, service: str, sample: int = 100, seed: int = 0, at: datetime | None = None
) -> SkewReport:
    """Compare online lookups of a service with its training values for a sample of entities.

    Raises:
        CompileError: an unknown service, or one reading a view with `online: false`.
        ProjectError: a bad sample size, no online store, a view not built, or an `at` the
            online store cannot answer for.
    """
    started = time.perf_counter()
    if sample < 1:
        raise ProjectError(f"--sample must be at least 1, not {sample}")
    request = resolve_features(project.definitions, service=service)
    refuse_offline_views(request, service)
    views = [v.view for v in request.views]
    full_names = project.definitions.feature_services[service].full_feature_names
    with project.online_store(max_connections=1) as store:
        with store.pool.connection() as connection, connection.cursor() as cursor:
            states = read_built_states(cursor, store.schema, views)
            _refuse_unbuilt(views, states, [v for v in views if not table_exists(cursor, store.schema, v)], service)
            samples = [(v, sample_keys(cursor, store.schema, v, limit=sample, seed=seed)) for v in views]
        at = _lookup_time(views, states, at)
        lookup_at = {v.name: at if v.is_aggregate else min(at, _reached(states[v.name], at)) for v in views}
        # What training has: "no row" apart from a row of NULLs, and entities to sample beside the online ones,
        # so a row online lacks is met even where no other view has its keys.
        training = _training(project, views, lookup_at, states, at)
        drawn = [(v, with_training(v, keys, training.candidates.get(v.name, []), limit=sample, seed=seed))
                 for v, keys in samples]  # fmt: skip
        rows = entity_rows(drawn)
        online = {} if not rows else _look_up(store, request, rows, lookup_at, full_names)
    # An aggregate view's values hold at its as_of: that is the spine time of its training values.
    offline_at = {
        name: utc(online[name].lookup.as_of or moment) if name in online else moment
        for name, moment in lookup_at.items()
    }
    compared: dict[str, list[Disagreement]] = {v.name: [] for v in views}
    if rows:
        _compare(project, request, rows, online, offline_at, training.latest, full_names, compared)
    report = SkewReport(
        service=service,
        at=at,
        sample=sample,
        seed=seed,
        entities=tuple(rows),
        views=tuple(
            ViewSkew(
                view=v.name,
                kind="aggregate" if v.is_aggregate else "latest",
                lookup_at=lookup_at[v.name],
                offline_at=offline_at[v.name],
                sampled=len(keys),
                from_training=len(drew) - len(keys),
                compared=len({tuple(row[k.name] for k in v.join_keys) for row in rows}),
                disagreements=tuple(compared[v.name]),
            )
            for (v, keys), (_, drew) in zip(samples, drawn, strict=True)
        ),
        seconds=time.perf_counter() - started,
        notes=_notes(samples, drawn) + _derived_notes(request),
    )
    results = [view.as_json(service, report.seconds) for view in report.views]
    artifacts.write_run_results(project.config.target_dir, results, report.seconds)
    return report


def _look_up(
    store: OnlineStore,
    request: FeatureRequest,
    rows: list[dict[str, Any]],
    lookup_at: Mapping[str, datetime],
    full_names: bool,
) -> dict[str, _Online]:
    """One lookup of the entity rows per lookup time, each for the views looked up at it."""
    online: dict[str, _Online] = {}
    for moment, group in _by_time(request, lookup_at).items():
        result = store.lookup(rows, features=_refs(group), full_feature_names=full_names, now=moment)
        columns = {name: [row[i] for row in result.values] for i, name in enumerate(result.feature_names)}
        online.update({view.name: _Online(view, columns) for view in result.views})
    return online


def _notes(
    samples: Sequence[tuple[FeatureView, list[Any]]], drawn: Sequence[tuple[FeatureView, list[Any]]]
) -> tuple[str, ...]:
    return tuple(
        f"feature view '{v.name}': its online table is empty, so "
        + (f"its {len(drew):,} entities were drawn from the training rows" if drew else "no entity was sampled from it")
        for (v, keys), (_, drew) in zip(samples, drawn, strict=True)
        if not keys
    )


def _derived_notes(request: FeatureRequest) -> tuple[str, ...]:
    # A derived feature is computed from its inputs and the caller's request fields, the same
    # SQL on both sides; its inputs are compared above, and there are no request fields to sample.
    return tuple(
        f"derived view '{d.view.name}': not compared itself (it needs each call's request fields); "
        f"its inputs ({', '.join(ref for ref, _ in d.inputs)}) are compared"
        for d in request.derived
    )


@dataclass(frozen=True)
class _Online:
    """One view's part of a lookup, and the values of the whole lookup by output name."""

    lookup: ViewLookup
    values: dict[str, list[Any]]


def _compare(
    project: Project,
    request: FeatureRequest,
    rows: list[dict[str, Any]],
    online: Mapping[str, _Online],
    offline_at: Mapping[str, datetime],
    latest: Mapping[str, dict[tuple[Any, ...], datetime]],
    full_names: bool,
    found: dict[str, list[Disagreement]],
) -> None:
    """Training values per spine time, each view's compared with its lookup, disagreements into `found`."""
    for moment, group in _by_time(request, offline_at).items():
        spine = _spine(request, rows, moment)
        table = project.training_set(spine=spine, features=_refs(group), full_feature_names=full_names)
        table = table.sort_by(_ROW_ID)
        offline = {name: table.column(name).to_pylist() for name in table.column_names}
        for view in group:
            # The names both sides answered under: a service's input to a derived view is hidden
            # in it, but asked for here by `view:feature` like the others.
            asked = resolve_features(project.definitions, features=_refs([view]), full_feature_names=full_names)
            names = [o.output_name for o in asked.views[0].features]
            found[view.view.name] = _view_disagreements(
                view, names, rows, online[view.view.name], offline, latest, moment
            )


def _view_disagreements(
    view: ViewRequest,
    names: Sequence[str],
    rows: list[dict[str, Any]],
    online: _Online,
    offline: Mapping[str, list[Any]],
    latest: Mapping[str, dict[tuple[Any, ...], datetime]],
    moment: datetime,
) -> list[Disagreement]:
    definition = view.view
    keys = [k.name for k in definition.join_keys]
    found = []
    seen: set[tuple[Any, ...]] = set()
    for index, row in enumerate(rows):
        entity = {k: row[k] for k in keys}
        if tuple(entity.values()) in seen:  # rows share a view's entity when another view set its keys
            continue
        seen.add(tuple(entity.values()))
        status = online.lookup.statuses[index]

        def differ(feature: str, on: Any, off: Any, entity: dict[str, Any] = entity, status: str = status) -> None:
            found.append(Disagreement(definition.name, feature, entity, on, off, status))

        if not definition.is_aggregate:
            event = latest[definition.name].get(tuple(entity.values()))
            fresh = event is not None and (definition.ttl is None or event >= moment - _ttl(definition))
            online_event = online.lookup.event_timestamps[index]
            if (status is FeatureStatus.PRESENT) != fresh:
                shown_online = f"{status}" + (f" (event time {utc(online_event).isoformat()})" if online_event else "")
                shown_offline = f"row at {event.isoformat()}" if fresh and event else "no row within the ttl"
                differ(ROW, shown_online, shown_offline)
                continue
            if fresh and online_event is not None and event is not None and not same(online_event, event):
                differ(EVENT_TIME, utc(online_event), event)
        for name in names:
            on, off = online.values[name][index], offline[name][index]
            if not same(on, off):
                differ(name, on, off)
    return found


def _ttl(view: FeatureView) -> timedelta:
    assert view.ttl is not None
    return timedelta(seconds=view.ttl.seconds)


def _training(
    project: Project,
    views: Sequence[FeatureView],
    lookup_at: Mapping[str, datetime],
    states: Mapping[str, BuiltState],
    at: datetime,
) -> TrainingEntities:
    """Training's entities at each view's time: a latest-value view's lookup time, an aggregate
    view's as_of as the lookup will say it (`floor(min(at, T), g)`)."""
    times = {v.name: lookup_at[v.name] for v in views if not v.is_aggregate}
    for view in views:
        watermark = states[view.name].watermark
        if view.is_aggregate and view.granularity is not None and watermark is not None:
            times[view.name] = _floor(min(at, utc(watermark)), view.granularity.seconds)
    engine = open_engine(project.config.target, project.config.root)
    try:
        return training_entities(engine, project.definitions, views, times, root=project.config.root)
    finally:
        engine.close()


def _spine(request: FeatureRequest, rows: list[dict[str, Any]], moment: datetime) -> pa.Table:
    """The entity rows at one time, numbered so the training rows come back in their order."""
    keys: dict[str, Column] = {}
    for view in request.views:
        for key in view.view.join_keys:
            keys.setdefault(key.name, key)
    columns: dict[str, pa.Array] = {
        name: pa.array([row[name] for row in rows], _ARROW_TYPES.get(key.type) if key.type else None)
        for name, key in keys.items()
    }
    columns[DEFAULT_SPINE_TIMESTAMP] = pa.array([moment] * len(rows), pa.timestamp("us", tz="UTC"))
    columns[_ROW_ID] = pa.array(range(len(rows)), pa.int64())
    return pa.table(columns)


def _refuse_unbuilt(
    views: Sequence[FeatureView], states: Mapping[str, BuiltState], tableless: Sequence[FeatureView], service: str
) -> None:
    unbuilt = [v for v in views if v.name not in states or v in tableless]
    if unbuilt:
        names = ", ".join(f"'{v.name}' ({v.where})" for v in unbuilt)
        select = " ".join(v.name for v in unbuilt)
        raise ProjectError(
            f"feature service '{service}' reads feature view(s) {names} that have not been built online: "
            f"nothing to compare with. Run `fsql build --select '{select}'` (or `fsql build`) first"
        )


def _reached(state: BuiltState, default: datetime) -> datetime:
    return utc(state.reached) if state.reached is not None else default


def _lookup_time(views: Sequence[FeatureView], states: Mapping[str, BuiltState], at: datetime | None) -> datetime:
    """`at`, or now clamped to the newest build end; refused where the online store cannot answer for it."""
    now = datetime.now(UTC)
    ends = [utc(states[v.name].reached) for v in views if states[v.name].reached is not None]  # type: ignore[arg-type]
    chosen = utc(at) if at is not None else min([now, max(ends)] if ends else [now])
    for view in views:
        watermark = states[view.name].watermark
        if watermark is None:
            continue
        if view.is_aggregate:
            assert view.granularity is not None
            kept_from = _floor(utc(watermark), view.granularity.seconds)
            if chosen < kept_from:
                raise ProjectError(
                    f"--at {chosen.isoformat()} is before the oldest lookup the online tiles of feature view "
                    f"'{view.name}' answer ({kept_from.isoformat()}, floor of its watermark by its granularity): "
                    f"such lookups return OUTSIDE_MAX_AGE. Leave --at out, or give a time from "
                    f"{kept_from.isoformat()} on"
                )
        elif chosen < utc(watermark):
            raise ProjectError(
                f"--at {chosen.isoformat()} is before the watermark of feature view '{view.name}' "
                f"({utc(watermark).isoformat()}): its online rows may hold later events, and the online store "
                f"answers for the latest values only (past times are training_set's). Give a time from "
                f"{utc(watermark).isoformat()} on, or leave --at out"
            )
    return chosen


def _floor(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, tz=UTC)


def _by_time(request: FeatureRequest, times: Mapping[str, datetime]) -> dict[datetime, list[ViewRequest]]:
    groups: dict[datetime, list[ViewRequest]] = {}
    for view in request.views:
        groups.setdefault(times[view.view.name], []).append(view)
    return groups


def _refs(group: Sequence[ViewRequest]) -> list[str]:
    return [f"{v.view.name}:{f.feature.name}" for v in group for f in v.features]
