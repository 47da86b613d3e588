"""Online lookups awaited on an event loop, over psycopg's `AsyncConnectionPool`.

The same plans as `OnlineStore.lookup` (its SQL, key and request-field binding, and result
building: `fsql.online.lookup.Plan`); only the round trip is awaited here, so a server answers
many lookups at once on one thread instead of handing each to a worker thread.

An `AsyncLookups` belongs to the event loop it was opened on (asyncio pools cannot move
between loops): open it in the server's lifespan, close it there too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from psycopg import OperationalError
from psycopg.errors import UndefinedTable

from fsql.online.lookup import SESSION_SQL, OnlineStore, Plan, missing_tables_query, not_built_error, register_adapters
from fsql.online.result import LookupResult

if TYPE_CHECKING:
    from psycopg import AsyncConnection


class AsyncLookups:
    """`OnlineStore.lookup`, awaited: the store's plans and definitions, a pool of async connections.

    Args:
        store: the store whose plans (and definitions) the lookups use; it stays open beside this.
        max_connections: the pool's size; the store's pool size when None.
        timeout: seconds a lookup waits for a pooled connection before `PoolTimeout`.
    """

    def __init__(self, store: OnlineStore, *, max_connections: int | None = None, timeout: float = 5.0) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.store = store
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            store.conninfo,
            min_size=1,
            max_size=max_connections or store.pool.max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            timeout=timeout,
            open=False,
        )
        self._waiting: dict[Plan, list[_Waiting]] = {}  # per plan, the batch waiting for a connection

    async def open(self, *, timeout: float = 5.0) -> None:
        """Open the pool and wait up to `timeout` seconds for its first connection.

        Raises:
            PoolTimeout: no connection in time (the pool keeps trying in the background).
        """
        await self.pool.open(wait=True, timeout=timeout)

    async def close(self) -> None:
        await self.pool.close()

    async def lookup(
        self, rows: Sequence[Mapping[str, Any]], *, service: str | None, features: Sequence[str] | None, **options: Any
    ) -> LookupResult:
        """`OnlineStore.lookup`'s answer, awaited; the same checks raise the same errors before any query.

        Args:
            rows: the entity rows, keys and request fields.
            service: the feature service, or None with `features`.
            features: `view:feature` names or whole views, or None with `service`.
            **options: `full_feature_names` (bool or None) and `now` (datetime or None), as `lookup`'s.

        Raises:
            CompileError: an unknown service or feature, a missing key or a value of the wrong type.
            ProjectError: a view of the request has no online table yet.
            PoolTimeout: no pooled connection within the timeout (Postgres unreachable, pool exhausted).
        """
        plan = self.store.plan(service, features, options.get("full_feature_names"))
        now = options.get("now")
        params = plan.params(rows, now)
        if now is not None:  # a time of its own: a statement of its own
            return plan.result(rows, await self._fetch_retrying(plan, lambda: params))
        return plan.result(rows, await self._batched(plan, params, len(rows)))

    async def _batched(self, plan: Plan, params: dict[str, Any], count: int) -> list[Any]:
        """The rows for one lookup, read in one statement with every lookup of the same plan that
        arrives while the first of them waits for a connection (their entity rows one after another,
        as a longer request's would be; the rows come back in that order, one per entity row).

        With a connection free, a lookup runs alone at once; under load, each statement takes what has
        queued meanwhile, so Postgres and the driver pay per statement, not per request.
        """
        batch = self._waiting.get(plan)
        if batch is not None and sum(size for _, size, _ in batch) + count <= BATCH_ROWS:
            joined: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
            batch.append((params, count, joined))
            return await joined
        self._waiting[plan] = batch = [(params, count, None)]
        try:
            found = await self._fetch_retrying(plan, lambda: self._close(plan, batch))
        except BaseException as exc:
            self._close(plan, batch)
            failed = exc if isinstance(exc, Exception) else OperationalError("the lookup this one joined was cancelled")
            for _, _, future in batch[1:]:
                if future is not None and not future.done():
                    future.set_exception(failed)
            raise
        start = count
        for _, size, future in batch[1:]:
            if future is not None and not future.done():
                future.set_result(found[start : start + size])
            start += size
        return found[:count]

    def _close(self, plan: Plan, batch: list[_Waiting]) -> dict[str, Any]:
        """End a batch (lookups that arrive from now on start the next one); its merged parameters."""
        if self._waiting.get(plan) is batch:
            del self._waiting[plan]
        return _merged(batch)

    async def _fetch_retrying(self, plan: Plan, params: Callable[[], dict[str, Any]]) -> list[Any]:
        try:
            return await self._fetch(plan, params)
        except _Dropped:
            # The server dropped the connection (a restart, a terminated backend): after a restart
            # every idle one is dead, so let the pool check them all, then once more.
            await self.pool.check()
            return await self._fetch(plan, params)

    async def _fetch(self, plan: Plan, params: Callable[[], dict[str, Any]]) -> list[Any]:
        """The rows on a pooled connection; `params` is called once the connection is there."""
        async with self.pool.connection() as connection:
            try:
                return await execute(connection, plan, params(), self.store.schema)
            except OperationalError as exc:
                if connection.broken:  # the pool discards it on return
                    raise _Dropped from exc
                raise

    async def backend_pids(self) -> list[int]:
        """The server process of every connection the pool holds now."""
        held = [await self.pool.getconn() for _ in range(self.pool.get_stats()["pool_size"])]
        try:
            return [connection.info.backend_pid for connection in held]
        finally:
            for connection in held:
                await self.pool.putconn(connection)

    async def ping(self, *, timeout: float) -> None:
        """One `SELECT 1` through the pool, waiting up to `timeout` seconds for a connection."""
        async with self.pool.connection(timeout=timeout) as connection:
            await connection.execute("SELECT 1")


# The most entity rows one statement reads for a batch of lookups (a full batch waits as it is; the
# next lookup starts another): the server's default limit for one request.
BATCH_ROWS = 1000

# A lookup in a batch: its parameters, its number of entity rows, and where its rows go (None: the
# first lookup of the batch, which runs the statement).
_Waiting = tuple[dict[str, Any], int, "asyncio.Future[list[Any]] | None"]


def _merged(batch: list[_Waiting]) -> dict[str, Any]:
    """One statement's parameters for a batch: each array parameter (keys, request fields) the
    lookups' arrays one after another; `now` the first lookup's."""
    if len(batch) == 1:
        return batch[0][0]
    merged = dict(batch[0][0])
    for name, value in merged.items():
        if isinstance(value, list):
            merged[name] = [item for params, _, _ in batch for item in params[name]]
    return merged


class _Dropped(OperationalError):
    """The lookup's connection was broken under it (an OperationalError still, should a retry meet it)."""


async def execute(connection: AsyncConnection[Any], plan: Plan, params: dict[str, Any], schema: str) -> list[Any]:
    """`fsql.online.lookup.execute` on an async connection."""
    sql, sent = plan.statement(params)
    try:
        cursor = await connection.execute(sql, sent, prepare=True, binary=True)
    except UndefinedTable:
        sql, args = missing_tables_query(plan.request, schema)
        absent = [row[0] for row in await (await connection.execute(sql, args)).fetchall()]
        raise not_built_error(absent, plan.request, schema) from None
    rows: list[Any] = await cursor.fetchall()
    return rows


async def _configure(connection: AsyncConnection[Any]) -> None:
    register_adapters(connection)
    await connection.execute(SESSION_SQL)
