"""Online lookups awaited on an event loop, over psycopg's `AsyncConnectionPool`.

The same plans as `OnlineStore.lookup` (its SQL, key and request-field binding, and result
building: `fsql.online.lookup.Plan`); only the round trip is awaited here, so a server answers
many lookups at once on one thread instead of handing each to a worker thread.

An `AsyncLookups` belongs to the event loop it was opened on (asyncio pools cannot move
between loops): open it in the server's lifespan, close it there too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        params = plan.params(rows, options.get("now"))
        try:
            found = await self._fetch(plan, params)
        except _Dropped:
            # The server dropped the connection (a restart, a terminated backend): after a restart
            # every idle one is dead, so let the pool check them all, then once more.
            await self.pool.check()
            found = await self._fetch(plan, params)
        return plan.result(rows, found)

    async def _fetch(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        async with self.pool.connection() as connection:
            try:
                return await execute(connection, plan, params, self.store.schema)
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


class _Dropped(OperationalError):
    """The lookup's connection was broken under it (an OperationalError still, should a retry meet it)."""


async def execute(connection: AsyncConnection[Any], plan: Plan, params: dict[str, Any], schema: str) -> list[Any]:
    """`fsql.online.lookup.execute` on an async connection."""
    try:
        cursor = await connection.execute(plan.sql, params, prepare=True)
    except UndefinedTable:
        sql, args = missing_tables_query(plan.request, schema)
        absent = [row[0] for row in await (await connection.execute(sql, args)).fetchall()]
        raise not_built_error(absent, plan.request, schema) from None
    rows: list[Any] = await cursor.fetchall()
    return rows


async def _configure(connection: AsyncConnection[Any]) -> None:
    register_adapters(connection)
    await connection.execute(SESSION_SQL)
