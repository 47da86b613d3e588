"""Online lookups: features for a list of entities, in one round trip, in the order asked.

One statement per feature request joins every view's online table to the requested keys,
which are bound as arrays and unnested WITH ORDINALITY, so 1 or 100 entities use the
same prepared statement. Values older than a view's ttl (against `now`) come back NULL,
and so do unknown entities; each view's event time and freshness come back in the same row,
so the statuses (`fsql.online.result`) describe exactly the values read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from psycopg import OperationalError
from psycopg.errors import UndefinedTable
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from fsql.compile.derived import project_derived
from fsql.compile.latest import FEATURE_TS
from fsql.compile.request import FeatureRequest, resolve_features
from fsql.derived import RequestField
from fsql.engines.postgres import conninfo
from fsql.errors import CompileError, ProjectError
from fsql.online.binding import (
    INTEGER_KEYS,
    array_literal,
    bind_keys,
    bind_request_fields,
    fast_check,
    field_binder,
    one_value,
    ready_values,
    render_integer,
)
from fsql.online.result import FeatureStatus, LookupResult, ViewLookup
from fsql.online.tables import table_ref
from fsql.online.tile_lookup import answered_column, as_of_column, join_aggregate_view
from fsql.spec import Column, Definitions

_REQUEST = "request"
_ORDINAL = "_fsql_ordinal"


class OnlineStore:
    """Reads online tables with a connection pool, plus one connection of its own that lookups use
    when it is free (so a store holds up to max_connections + 1); safe to share across threads."""

    def __init__(self, url: str, *, schema: str, definitions: Definitions, max_connections: int = 4) -> None:
        from psycopg_pool import ConnectionPool

        self.schema = schema
        self.definitions = definitions
        self._conninfo = conninfo(url)
        self.pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
        )
        self._lock = threading.Lock()
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._leased = threading.Lock()  # held while a lookup uses `_lease`
        self._lease: Any = None  # the store's own connection (see `_fetch_leased`)
        try:
            self.pool.open(wait=True, timeout=5)
        except Exception as exc:
            self.pool.close()
            raise ProjectError(f"cannot connect to the online store at {safe_url(url)}: {exc}") from None

    def close(self) -> None:
        with self._leased:
            lease, self._lease = self._lease, None
            if lease is not None:
                lease.close()
        self.pool.close()

    def backend_pids(self) -> list[int]:
        """The server process of every connection the store holds now (its own and the pool's)."""
        held = [self.pool.getconn() for _ in range(self.pool.get_stats()["pool_size"])]
        try:
            pids = [connection.info.backend_pid for connection in held]
        finally:
            for connection in held:
                self.pool.putconn(connection)
        with self._leased:
            if self._lease is not None and not self._lease.closed:
                pids.append(self._lease.info.backend_pid)
        return pids

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def use_definitions(self, definitions: Definitions) -> None:
        """Serve lookups from these definitions from now on (a warm `Project` whose files changed)."""
        with self._lock:
            self.definitions = definitions
            self._plans = {}

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        full_feature_names: bool | None = None,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Keys and feature values for each entity row, in the order given (see `lookup`).

        The values alone: no statuses or event times are built (the same query runs).
        """
        plan = self.plan(service, features, full_feature_names)
        rows = self._fetch(plan, plan.params(entity_rows, now))
        named, keys_of = plan.key_names + plan.names, plan.keys_of
        # The row's values come first, each view's metadata after them: zip stops at the names.
        pairs = zip(entity_rows, rows, strict=True)
        return [dict(zip(named, (*keys_of(entity), *row), strict=False)) for entity, row in pairs]

    def lookup(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        full_feature_names: bool | None = None,
        now: datetime | None = None,
    ) -> LookupResult:
        """Values, statuses and event times for each entity row, in the order given; one query.

        Raises:
            CompileError: an unknown service or feature, or a row missing a key or with a
                value of the wrong type; raised before any query runs.
        """
        plan = self.plan(service, features, full_feature_names)
        rows = self._fetch(plan, plan.params(entity_rows, now))
        return plan.result(entity_rows, rows)

    @property
    def conninfo(self) -> str:
        """The libpq connection string the store connects with (another pool may open its own)."""
        return self._conninfo

    def plan(self, service: str | None, features: Sequence[str] | None, full_feature_names: bool | None) -> Plan:
        """The resolved request, its keys and its SQL, made once per (service or features, naming): what
        a lookup needs besides a connection (`fsql.online.aio` awaits the same plans).

        Raises:
            CompileError: an unknown service or feature, or a view that is not online.
        """
        wanted = tuple(features) if features else None
        key = (service, wanted, full_feature_names)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        with self._lock:
            definitions = self.definitions
            request = resolve_features(
                definitions, service=service, features=wanted, full_feature_names=full_feature_names
            )
            refuse_offline_views(request, service)
            keys = request_keys(request)
            plan = Plan(request, keys, self.schema)
            if self.definitions is definitions:
                self._plans[key] = plan
        return plan

    def _fetch(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        if self._leased.acquire(blocking=False):
            try:
                return self._fetch_leased(plan, params)
            finally:
                self._leased.release()
        return self._fetch_pooled(plan, params)

    def _fetch_leased(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        """On the store's own connection, beside the pool: a pool checkout and return cost about as much
        Python as the rest of a one-entity lookup. Whichever call finds it free uses it."""
        connection = self._lease
        if connection is None or connection.broken or connection.closed:
            connection = self._lease = self._connect()
        try:
            return execute(connection, plan, params, self.schema)
        except OperationalError:
            if not connection.broken:
                raise
            # The server dropped it (restart, idle timeout, terminated backend): once more, on the pool.
            self._lease = None
            return self._fetch_pooled(plan, params)

    def _fetch_pooled(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        for attempt in (1, 2):
            with self.pool.connection() as connection:
                try:
                    return execute(connection, plan, params, self.schema)
                except OperationalError:
                    # A dropped connection: the pool discards it on return; try once more on another one.
                    if attempt == 2 or not connection.broken:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> Any:
        import psycopg

        connection = psycopg.connect(self._conninfo, autocommit=True)
        _configure(connection)
        return connection


def execute(connection: Any, plan: Plan, params: dict[str, Any], schema: str) -> list[Any]:
    """The lookup's rows on a connection (`fsql.online.aio.execute` is its twin for an async one)."""
    sql, sent = plan.statement(params)
    try:
        cursor = connection.execute(sql, sent, prepare=True, binary=True)
    except UndefinedTable:
        sql, args = missing_tables_query(plan.request, schema)
        absent = [row[0] for row in connection.execute(sql, args).fetchall()]
        raise not_built_error(absent, plan.request, schema) from None
    rows: list[Any] = cursor.fetchall()
    return rows


class Plan:
    """What a lookup of one request shape needs per call: the keys to bind and the SQL; building the
    parameters (`params`), the statement (`statement`) and the result (`result`) is pure, so sync and
    async lookups share it."""

    __slots__ = (
        "_binders",
        "_checks",
        "_derived",
        "_fields",
        "_literals",
        "_one_row_shape",
        "_shapes",
        "_views",
        "key_names",
        "keys",
        "keys_of",
        "names",
        "request",
        "schema",
        "sql",
    )

    def __init__(self, request: FeatureRequest, keys: tuple[Column, ...], schema: str) -> None:
        self.request = request
        self.keys = keys
        self.schema = schema
        self.sql = lookup_sql(request, schema, keys)  # every request field an array
        # The request fields' parameters, and the statement per shape (which of them go as one scalar).
        self._fields = tuple(f"req_{i}" for i in range(len(request.request_fields)))
        self._shapes: dict[tuple[tuple[bool, ...], bool], str] = {}
        self.names = request.output_names
        self.key_names = tuple(key.name for key in keys)
        # An entity row's key values, as a tuple (itemgetter of one name returns the bare value).
        getter = itemgetter(*self.key_names)
        self.keys_of: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            getter if len(keys) > 1 else lambda row: (getter(row),)
        )
        self._checks = tuple(fast_check(key) for key in keys)
        # The array parameters sent as literals (see `encode`): integer keys. Other keys' values are as
        # the caller gave them (psycopg adapts them); request fields go in binary (see `lookup_sql`).
        self._literals = tuple((f"key_{i}", render_integer) for i, k in enumerate(keys) if k.type in INTEGER_KEYS)
        # Per view: its name, its features' output names, where its (event time, fresh) pair sits
        # in a row (after every value, as `lookup_sql` lays them out), and whether it aggregates.
        width = len(self.names)
        self._views = tuple(
            (
                view.view.name,
                tuple(f.output_name for f in view.features if not f.hidden),
                width + 2 * index,
                view.view.is_aggregate,
            )
            for index, view in enumerate(request.views)
        )
        # Derived values are computed at lookup time: PRESENT (a NULL from NULL inputs included), no event time.
        self._derived = tuple((d.view.name, tuple(f.output_name for f in d.features)) for d in request.derived)
        # Per request field: its parameter, how to read it from a row, and the values it sends as they are.
        self._binders = tuple(
            (name, field_binder(field)) for name, field in zip(self._fields, request.request_fields, strict=True)
        )
        # One entity row: every request field is one value (see `statement`).
        self._one_row_shape = (tuple(True for _ in self._fields), HOIST_ROWS <= 1)

    def result(self, entity_rows: Sequence[Mapping[str, Any]], rows: list[Any]) -> LookupResult:
        """Split each row into its values and, per view, its statuses and event times."""
        columns = tuple(zip(*rows, strict=True)) if rows else ()
        views = []
        for name, features, at, is_aggregate in self._views:
            stamps = columns[at] if columns else ()
            # An aggregate view's "event time" is its as_of, the same for every row (NULL before any build).
            views.append(
                ViewLookup(
                    name=name,
                    features=features,
                    statuses=tuple(map(_status, stamps, columns[at + 1])) if columns else (),
                    event_timestamps=stamps,
                    as_of=stamps[0] if is_aggregate and stamps else None,
                )
            )
        if self._derived:
            present, nothing = (FeatureStatus.PRESENT,) * len(rows), (None,) * len(rows)
            for name, features in self._derived:
                views.append(ViewLookup(name=name, features=features, statuses=present, event_timestamps=nothing))
        width, key_names = len(self.names), self.key_names
        return LookupResult(
            entities=tuple({name: entity[name] for name in key_names} for entity in entity_rows),
            feature_names=self.names,
            values=tuple(row[:width] for row in rows),
            views=tuple(views),
        )

    def params(self, entity_rows: Sequence[Mapping[str, Any]], now: datetime | None) -> dict[str, Any]:
        """The statement's parameters: the keys, the request fields of derived features, and `now`.

        Raises:
            CompileError: a row lacks a key or request field, or has a value of the wrong type.
        """
        params = self.bind(entity_rows)
        if self._binders:
            ready = self._ready_request_values(entity_rows)
            params.update(ready if ready is not None else bind_request_fields(self.request, entity_rows))
        params["now"] = now or datetime.now(UTC)
        return params

    def _ready_request_values(self, entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """`bind_request_fields`'s result when every row has every field and each value can be sent as
        it is (`ready_values`' rule, with the per-field lookups made once per plan), else None."""
        params: dict[str, Any] = {}
        for name, binder in self._binders:
            values = ready_values(binder, entity_rows)
            if values is None:
                return None
            params[name] = values
        return params

    def statement(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL and the parameters to send (`params` encoded) in the shape these values call for:
        a request field whose rows all carry one value goes as one scalar parameter (always so for one
        entity), the others as arrays. Unnesting an array and reading it per row cost Postgres more than
        the derived features' own arithmetic (at 100 entities), and psycopg dumps a scalar for a fraction
        of a list's cost. From `HOIST_ROWS` entities on, a derived feature that reads nothing but such
        scalars is computed once (see `lookup_sql`'s `hoist`). Each shape is its own prepared statement; a plan
        builds each once.
        """
        sent = self.encode(params)
        fields = self._fields
        if not fields:
            return self.sql, sent
        sent = dict(sent) if sent is params else sent
        if len(params["key_0"]) == 1:
            for name in fields:
                sent[name] = params[name][0]
            shape = self._one_row_shape
        else:
            scalars = tuple(one_value(params[name]) for name in fields)
            if not any(scalars):
                return self.sql, sent
            for name, single in zip(fields, scalars, strict=True):
                if single:
                    sent[name] = params[name][0]
            shape = (scalars, len(params["key_0"]) >= HOIST_ROWS)
        sql = self._shapes.get(shape)
        if sql is None:
            sql = self._shapes[shape] = lookup_sql(self.request, self.schema, self.keys, *shape)
        return sql, sent

    def encode(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` as sent: integer key arrays as one Postgres array literal each, built by `str.join`,
        which costs a fraction of psycopg's list dumpers (they walk every element in Python) and little
        for Postgres to parse (by the statement's cast). Times and floats cost Postgres more from text
        than the client saves (measured with the derived benchmark): request fields stay binary."""
        if not self._literals:
            return params
        sent = dict(params)
        for name, render in self._literals:
            sent[name] = array_literal(params[name], render)
        return sent

    def bind(self, entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """`bind_keys`, with a quick path for rows whose keys are all of their exact type and in range;
        anything else (a missing key, None, a subclass, a value out of range) takes the full check."""
        params: dict[str, Any] = {}
        try:
            for index, (name, (exact, bounds)) in enumerate(zip(self.key_names, self._checks, strict=True)):
                values = [row[name] for row in entity_rows]
                if not values or not all(type(value) in exact for value in values):
                    return bind_keys(self.keys, entity_rows)
                if bounds is not None and (min(values) < bounds[0] or max(values) > bounds[1]):
                    return bind_keys(self.keys, entity_rows)
                params[f"key_{index}"] = values
        except (KeyError, TypeError):
            return bind_keys(self.keys, entity_rows)
        return params


# From how many entity rows on a derived feature of scalar request fields alone is computed once (an
# InitPlan) rather than per row. Bare statements of the example (seconds_between and ln of the request):
# 2 rows 0.005 ms slower, 10 rows even, 100 rows 0.04 ms faster (0.95 -> 0.91 ms).
HOIST_ROWS = 10


def _status(feature_ts: datetime | None, fresh: bool | None) -> FeatureStatus:
    if feature_ts is None:
        return FeatureStatus.NOT_FOUND
    return FeatureStatus.PRESENT if fresh else FeatureStatus.OUTSIDE_MAX_AGE


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def refuse_offline_views(request: FeatureRequest, service: str | None) -> None:
    """Views with `online: false` have no online table: say so before any query.

    Raises:
        CompileError: the request reads a view that is not online.
    """
    offline = [v.view for v in request.views if not v.view.online]
    if offline:
        asked = f"feature service '{service}'" if service else "the features asked for"
        names = ", ".join(f"'{v.name}' ({v.where})" for v in offline)
        raise CompileError(
            f"{asked} reads feature view(s) {names} with online: false, which have no online table: set "
            f"online: true on them and run `fsql build`, or leave their features out of the online request"
        )


def missing_tables_query(request: FeatureRequest, schema: str) -> tuple[str, tuple[Any, ...]]:
    """A query that says, per view of the request in order, whether its online table is missing.

    Only run once a lookup has failed on a missing table, so the happy path pays no extra round trip.
    """
    names = [table_ref(schema, v.view.name).sql("postgres") for v in request.views]
    sql = "SELECT to_regclass(name) IS NULL FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n) ORDER BY n"
    return sql, (names,)


def not_built_error(absent: Sequence[bool], request: FeatureRequest, schema: str) -> ProjectError:
    """The error for a lookup that met a missing online table: which views lack one (`absent`, per view,
    from `missing_tables_query`), and what to run."""
    views = [v.view for v in request.views]
    missing = [view for view, gone in zip(views, absent, strict=True) if gone] or views
    listed = ", ".join(f"'{v.name}' ({v.where})" for v in missing)
    select = missing[0].name if len(missing) == 1 else "'" + " ".join(v.name for v in missing) + "'"
    return ProjectError(
        f"feature view(s) {listed} have no online table in schema '{schema}' yet: nothing has been "
        f"materialized for them. Run `fsql build --select {select}` (or `fsql build`) first, then look up again"
    )


def request_keys(request: FeatureRequest) -> tuple[Column, ...]:
    """Every join key the request's views need, in first-seen order."""
    keys: dict[str, Column] = {}
    for view in request.views:
        for key in view.view.join_keys:
            keys.setdefault(key.name, key)
    return tuple(keys.values())


# A lookup by primary key has one good plan: plan it once, not at every call.
SESSION_SQL = "SET plan_cache_mode = force_generic_plan"


def register_adapters(connection: Any) -> None:
    """How a lookup connection sends Python values (sync or async: adapters are the same objects)."""
    from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper

    # Python ints go as int8 whatever their size: psycopg would otherwise send int2[] or
    # int4[] for small values, and each array type is a prepared statement of its own.
    connection.adapters.register_dumper(int, Int8Dumper)
    connection.adapters.register_dumper(int, Int8BinaryDumper)


def _configure(connection: Any) -> None:
    register_adapters(connection)
    connection.execute(SESSION_SQL)


@lru_cache(maxsize=256)
def lookup_sql(
    request: FeatureRequest,
    schema: str,
    keys: tuple[Column, ...],
    scalars: tuple[bool, ...] = (),
    hoist: bool = False,
) -> str:
    """The lookup statement for a request; cached, so each request shape is built once.

    `scalars`: per request field, whether it is bound as one scalar for every row (see `Plan.statement`)
    rather than as an array unnested beside the keys; none of them when empty. `hoist`: compute a derived
    feature that reads only those scalars (and constants) once per statement, as an uncorrelated scalar
    subquery (an InitPlan), not once per row (see `HOIST_ROWS`).
    """
    fields = request.request_fields
    scalars = scalars or (False,) * len(fields)
    arrayed = [not scalar for scalar in scalars]
    arrays = [(f"key_{i}", key.type) for i, key in enumerate(keys)]
    arrays += [(f"req_{i}", field.type) for i, field in enumerate(fields) if arrayed[i]]
    unnest = exp.Unnest(
        expressions=[
            exp.cast(
                exp.Placeholder(this=name),
                exp.DataType(this=exp.DType.ARRAY, expressions=[exp.DataType(this=type_)], nested=True),
            )
            for name, type_ in arrays
        ],
        offset=exp.to_identifier(_ORDINAL, quoted=True),  # WITH ORDINALITY: the position asked for
        alias=exp.TableAlias(
            this=exp.to_identifier(_REQUEST, quoted=True),
            # Request fields as _fsql_req_<i>: they cannot collide with a key.
            columns=[
                exp.to_identifier(n, quoted=True) for n in (*(k.name for k in keys), *_field_columns(fields, arrayed))
            ],
        ),
    )
    query = exp.select().from_(unnest)
    now = exp.cast(exp.Placeholder(this="now"), "TIMESTAMPTZ")
    meta: list[exp.Expr] = []
    for index, view in enumerate(request.views):
        if view.view.is_aggregate:
            query = join_aggregate_view(query, view, schema, exp.to_identifier(_REQUEST, quoted=True), now)
            # After every value, per view: the time its values hold at, and "fresh": whether the kept
            # tiles answer for it (windows have no ttl; a lookup before them is OUTSIDE_MAX_AGE).
            as_of = as_of_column(view.view)
            meta.append(exp.alias_(as_of.this.copy(), f"_fsql_ts_{index}", quoted=True))
            meta.append(exp.alias_(answered_column(view.view), f"_fsql_fresh_{index}", quoted=True))
            continue
        alias = view.view.name
        on = exp.and_(
            *(exp.EQ(this=_col(k.name, alias), expression=_col(k.name, _REQUEST)) for k in view.view.join_keys)
        )
        query = query.join(table_ref(schema, alias).as_(alias, quoted=True), on=on, join_type="LEFT")
        fresh = None
        if view.view.ttl is not None:
            lower = exp.TimestampSub(
                this=now.copy(),
                expression=exp.Literal.number(view.view.ttl.sql_amount),
                unit=exp.Var(this=view.view.ttl.sql_unit),
            )
            fresh = exp.GTE(this=_col(FEATURE_TS, alias), expression=lower)
        for output in view.features:
            value: exp.Expr = _col(output.feature.name, alias)
            if fresh is not None:
                value = exp.Case(ifs=[exp.If(this=fresh.copy(), true=value)])
            query = query.select(exp.alias_(value, output.output_name, quoted=True))
        # After every value, per view: its row's event time and whether the ttl kept it.
        meta.append(exp.alias_(_col(FEATURE_TS, alias), f"_fsql_ts_{index}", quoted=True))
        meta.append(exp.alias_(fresh or exp.true(), f"_fsql_fresh_{index}", quoted=True))
    values = len(query.expressions)
    query = query.select(*meta)
    done = (
        _with_derived(query, request, values, scalars, hoist)
        if request.derived
        else query.order_by(_col(_ORDINAL, _REQUEST))
    )
    sql = done.sql("postgres", unsupported_level=ErrorLevel.RAISE)
    # Request fields go in psycopg's binary format: its text format quotes every element of a float
    # or timestamp array through a regex, and Postgres reads binary times and floats faster.
    for name in (f"req_{i}" for i in range(len(fields))):
        sql = sql.replace(f"%({name})s", f"%({name})b")
    return sql


_VALUES = "_fsql_v"


def _with_derived(
    inner: exp.Select, request: FeatureRequest, values: int, scalars: tuple[bool, ...], hoist: bool
) -> exp.Select:
    """Derived features, computed by Postgres in the same statement: a projection over the lookup's
    own values, read from a subquery that Postgres may not pull up (OFFSET 0). Pulled up, every read of
    an input would compute its expression again (a ttl's CASE, a window's watermark check in numeric):
    at 100 entities that cost more than the derived features themselves. Request fields bound as one
    scalar (`scalars`) are read from their parameter, the others from the unnested arrays."""
    fields = request.request_fields
    arrayed = [not scalar for scalar in scalars]
    columns = _field_columns(fields, arrayed)
    inner.select(_col(_ORDINAL, _REQUEST), *(_col(name, _REQUEST) for name in columns), copy=False)
    inner.offset(0, copy=False)
    # Short names: psycopg re-parses a statement longer than 4 kB at every call (0.1 ms here).
    outer = exp.select(*(_col(s.alias, _VALUES) for s in inner.expressions[: -len(columns) - 1]))
    outer = outer.from_(inner.subquery(exp.to_identifier(_VALUES, quoted=True)))
    index = {f.name: i for i, f in enumerate(fields)}

    def read(field: RequestField) -> exp.Expr:
        i = index[field.name]
        if arrayed[i]:
            return _col(f"_fsql_req_{i}", _VALUES)
        return exp.cast(exp.Placeholder(this=f"req_{i}"), exp.DataType(this=field.type))

    outer = project_derived(outer, request, read_request=read, dialect="postgres", insert_at=values)
    if hoist:
        derived = {f.output_name for d in request.derived for f in d.features}
        for select in outer.expressions:
            if select.alias in derived and select.this.find(exp.Column) is None:  # parameters and constants
                select.set("this", exp.Subquery(this=exp.select(select.this.copy())))
    return outer.order_by(_col(_ORDINAL, _VALUES))


def _field_columns(fields: Sequence[RequestField], arrayed: Sequence[bool]) -> list[str]:
    """The unnested columns of the request fields sent as arrays: `_fsql_req_<i>`, i their position."""
    return [f"_fsql_req_{i}" for i in range(len(fields)) if arrayed[i]]


def _col(name: str, table: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True), table=exp.to_identifier(table, quoted=True))
