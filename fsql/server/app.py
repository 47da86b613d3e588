"""The HTTP face of the online store: routes parse and check a request, await the same lookup
the Python API runs (`fsql.online.aio.AsyncLookups`: `OnlineStore.lookup`'s plans on an async
pool, on the event loop), and write Feast's JSON (POST /push writes rows through `fsql.push` on
a worker thread, see `fsql.server.push`). No SQL here.

Every error a client can cause is a 4xx with `{"error": message}` in the words the CLI uses;
a store that cannot be reached is a 503; anything else is a 500 with no details (they go to
the server's log, never a traceback to the client).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fsql.errors import CompileError, FsqlError
from fsql.online.aio import AsyncLookups
from fsql.online.lookup import OnlineStore
from fsql.server.feast_json import TooManyEntities, read_request, write_response
from fsql.server.metrics import CONTENT_TYPE, Metrics
from fsql.server.push import PushRefused, handle_push

log = logging.getLogger("fsql.server")


@dataclass(frozen=True)
class ServerOptions:
    token: str | None = None  # when set, every route but /health needs `Authorization: Bearer <token>`
    max_entities: int = 1000
    max_body_bytes: int = 1 << 20
    health_timeout: float = 2.0  # seconds /health waits for a pooled connection
    pool_timeout: float = 5.0  # seconds a lookup waits for a pooled connection before a 503
    # The project directory: where POST /push with to="online_and_offline" appends files to
    # folder sources. None: the server pushes online only.
    push_root: Path | None = None


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(store: OnlineStore, options: ServerOptions | None = None) -> Starlette:
    """The ASGI app serving `store`; the caller owns the store (opens and closes it).

    Lookups run on an async pool of the store's size that the app's lifespan opens and closes (so
    run it with lifespan, as uvicorn does, or inside `with TestClient(app)`); pushes use the
    store's own pool on a worker thread.
    """
    options = options or ServerOptions()
    state = _State(store, options)
    metrics = Metrics(state.pool_stats)

    async def get_online_features(request: Request) -> Response:
        body = await _read_body(request, options.max_body_bytes)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
        query = read_request(parsed, store.definitions, max_entities=options.max_entities)
        result = await state.lookups().lookup(
            query.entity_rows,
            service=query.service,
            features=query.features,
            full_feature_names=query.full_feature_names,
        )
        return _json(200, write_response(result))

    async def push(request: Request) -> Response:
        body = await _read_body(request, options.max_body_bytes)
        return await handle_push(store, body, root=options.push_root)

    async def health(request: Request) -> Response:
        try:
            await state.lookups().ping(timeout=options.health_timeout)
        except Exception as exc:
            return _json(503, {"status": "unavailable", "error": f"the online store does not answer: {exc}"})
        return _json(200, {"status": "ok"})

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    lookup = _guarded(get_online_features, "/get-online-features", metrics, options.token)
    routes = [
        Route("/get-online-features", lookup, methods=["POST"]),
        Route("/push", _guarded(push, "/push", metrics, options.token), methods=["POST"]),
        Route("/health", _guarded(health, "/health", metrics, None), methods=["GET"]),  # probes send no token
        Route("/metrics", _guarded(metrics_text, "/metrics", metrics, options.token), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=state.lifespan)


class _State:
    """The app's async lookups, which live as long as its lifespan (an asyncio pool belongs to one loop)."""

    def __init__(self, store: OnlineStore, options: ServerOptions) -> None:
        self._store, self._options = store, options
        self._lookups: AsyncLookups | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        from psycopg_pool import PoolTimeout

        self._lookups = lookups = AsyncLookups(self._store, timeout=self._options.pool_timeout)
        app.state.lookups = lookups
        try:
            await lookups.open(timeout=self._options.health_timeout)
        except PoolTimeout as exc:  # serve anyway: /health says 503 until the pool reaches Postgres
            log.warning("the online store does not answer yet: %s", exc)
        try:
            yield
        finally:
            self._lookups = None
            await lookups.close()

    def lookups(self) -> AsyncLookups:
        if self._lookups is None:
            raise RuntimeError("the app's lifespan has not started: run it under uvicorn, or in `with TestClient(app)`")
        return self._lookups

    def pool_stats(self) -> dict[str, int]:
        return dict(self._lookups.pool.get_stats()) if self._lookups is not None else {}


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler, endpoint: str, metrics: Metrics, token: str | None) -> Handler:
    """The handler behind the token check, with its errors as JSON and its latency measured."""

    async def guarded(request: Request) -> Response:
        started = time.perf_counter()
        try:
            if token is not None:
                _check_token(request, token)
            response = await handler(request)
        except (HTTPError, PushRefused) as exc:
            response = _json(exc.status, {"error": str(exc)})
        except TooManyEntities as exc:
            response = _json(413, {"error": str(exc)})
        except FsqlError as exc:  # unknown service or feature, a missing key, a key of the wrong type
            response = _json(400 if isinstance(exc, CompileError) else 503, {"error": str(exc)})
        except Exception as exc:
            response = _unexpected(exc)
        metrics.observe(endpoint, response.status_code, time.perf_counter() - started)
        return response

    return guarded


def _unexpected(exc: Exception) -> Response:
    from psycopg import Error as DatabaseError
    from psycopg_pool import PoolTimeout

    if isinstance(exc, PoolTimeout | DatabaseError):
        log.warning("online store error: %s", exc)
        return _json(503, {"error": f"the online store failed to answer: {type(exc).__name__}: {exc}"})
    log.exception("unexpected error")
    return _json(500, {"error": "unexpected server error; the server's log has the details"})


def _check_token(request: Request, token: str) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPError(401, "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the request body is {declared} bytes; this server takes at most {limit} (--max-body)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"the request body is over {limit} bytes, the most this server takes (--max-body)")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(status: int, content: Any) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")
