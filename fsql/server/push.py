"""POST /push: rows of a push-enabled view into the online store, through `fsql.push.push`,
the same code `Project.push` runs. No SQL here.

Body: `{"view": name, "rows": [{column: value}, ...], "to": "online"}`, or the rows as
columns, Feast's `"df": {column: [values]}`; `to` may be "online_and_offline" when the
server knows the project's directory (`fsql serve` passes it). Answers
`{"view", "rows", "written", "offline_file"}`. A role that may not write the online table
is a 403, a table that must be rebuilt first a 409; bad rows are a 400 naming the row and
the column (by `create_app`'s error mapping).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fsql.errors import MigrationError
from fsql.online.lookup import OnlineStore
from fsql.push import PushResult, push

_FIELDS = ("view", "rows", "df", "to")


class PushRefused(Exception):
    """The store refused the write: (status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_push(body: Any) -> tuple[str, Any, str]:
    """The view, rows and destination of a /push body; ValueError says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object with 'view' and 'rows' (or 'df')")
    unknown = [name for name in body if name not in _FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(repr(n) for n in unknown)}: a push takes {', '.join(_FIELDS)}")
    view = body.get("view")
    if not isinstance(view, str):
        raise ValueError("'view' must be the name of a push-enabled feature view")
    if ("rows" in body) == ("df" in body):
        raise ValueError("send exactly one of 'rows' (a list of objects) and 'df' (an object of column lists)")
    rows = body["rows"] if "rows" in body else body["df"]
    if "rows" in body and not isinstance(rows, list):
        raise ValueError("'rows' must be a list of objects")
    if "df" in body and not isinstance(rows, dict):
        raise ValueError("'df' must be an object of column lists")
    to = body.get("to", "online")
    if not isinstance(to, str):
        raise ValueError('\'to\' must be "online" or "online_and_offline"')
    return view, rows, to


def push_rows(store: OnlineStore, body: Any, *, root: Path | None) -> dict[str, Any]:
    """Run one push on a pooled connection and describe it as JSON."""
    from psycopg import errors

    view, rows, to = read_push(body)
    if to == "online_and_offline" and root is None:
        raise PushRefused(400, "this server was started without a project directory, so it pushes online only")
    try:
        with store.pool.connection() as connection:
            result = push(
                connection, definitions=store.definitions, schema=store.schema, view=view, rows=rows, to=to, root=root
            )
    except errors.InsufficientPrivilege as exc:
        raise PushRefused(
            403,
            f"the server's Postgres role may not write the online table of '{view}' ({exc.diag.message_primary}): "
            f"pushes need INSERT and UPDATE on it; lookups only need SELECT",
        ) from None
    except MigrationError as exc:
        raise PushRefused(409, str(exc)) from None
    return _described(result)


def _described(result: PushResult) -> dict[str, Any]:
    return {
        "view": result.view,
        "rows": result.rows,
        "written": result.written,
        "offline_file": None if result.offline_file is None else str(result.offline_file),
    }


async def handle_push(store: OnlineStore, body: bytes, *, root: Path | None) -> Response:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PushRefused(400, f"the request body is not valid JSON: {exc}") from None
    try:
        answer = await run_in_threadpool(push_rows, store, parsed, root=root)
    except ValueError as exc:
        raise PushRefused(400, str(exc)) from None
    return Response(orjson.dumps(answer), status_code=200, media_type="application/json")
