"""The server's lookups awaited on the event loop (`fsql.online.aio`): the same answers as the Python
API under concurrent requests on a real uvicorn, a pool exhausted, and Postgres dropping every
connection or refusing new ones: a 503 naming the store, never a 500, and back to 200 after."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from online_helpers import TWO_VIEWS, build, online_url, serving_client, write_project, write_rider_rows, write_rows
from test_derived_invariant import online_example  # noqa: F401 (a fixture)
from test_server import lookup_role  # noqa: F401 (a fixture)

import fsql
from fsql.online.aio import AsyncLookups
from fsql.online.lookup import OnlineStore
from fsql.server.app import ServerOptions, create_app

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
DRIVERS = 40


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_VIEWS)
    write_rows(root, [(d, NOW - timedelta(hours=d % 30), None, d / 100, f"d{d}") for d in range(1, DRIVERS + 1)])
    write_rider_rows(root, [(r, NOW - timedelta(days=2), r * 10) for r in range(1, 6)])
    build(root, NOW + timedelta(seconds=1))
    return root


def body(driver: int, rider: int) -> dict[str, Any]:
    return {"feature_service": "both", "entities": {"driver_id": [driver, driver + 1], "rider_id": [rider, 99]}}


def columns(answer: dict[str, Any]) -> list[list[Any]]:
    return [result["values"] for result in answer["results"]]


class Server:
    """fsql's app on a real uvicorn in a thread of this process (lifespan and all), on a free port."""

    def __init__(self, store: OnlineStore, options: ServerOptions) -> None:
        config = uvicorn.Config(create_app(store, options), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started"
            threading.Event().wait(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def test_concurrent_requests_on_a_small_pool_answer_as_the_python_api(project: Path) -> None:
    cases = [(d, 1 + d % 6) for d in range(1, DRIVERS)] * 4  # rider 6 is unknown: NOT_FOUND
    with fsql.load_project(project).online_store(max_connections=2) as store:
        expected = {}
        for driver, rider in cases:
            rows = [{"driver_id": driver, "rider_id": rider}, {"driver_id": driver + 1, "rider_id": 99}]
            expected[(driver, rider)] = store.lookup(rows, service="both")
        # No time limit on a loaded machine (httpx's default is 5 s; it once ran out mid-suite): a hang still fails.
        with Server(store, ServerOptions()) as base, httpx.Client(base_url=base, timeout=120) as http:

            def ask(case: tuple[int, int]) -> tuple[tuple[int, int], int, dict[str, Any]]:
                response = http.post("/get-online-features", json=body(*case))
                return case, response.status_code, response.json()

            with ThreadPoolExecutor(32) as threads:
                answers = list(threads.map(ask, cases))
            metrics = http.get("/metrics").text
    assert {status for _, status, _ in answers} == {200}
    for case, _, answer in answers:
        want = expected[case]
        assert columns(answer)[2:] == [list(column) for column in zip(*want.values, strict=True)], case
        statuses = [s.value for s in want.views[0].statuses]
        assert answer["results"][2]["statuses"] == statuses
    assert f'fsql_responses_total{{endpoint="/get-online-features",code="200"}} {len(cases)}' in metrics
    assert "fsql_pool_connections_max 2" in metrics.splitlines()


def test_an_exhausted_pool_is_a_503_and_serves_again_once_a_connection_is_free(project: Path) -> None:
    with fsql.load_project(project).online_store(max_connections=1) as store:
        http = serving_client(create_app(store, ServerOptions(pool_timeout=0.2)))
        assert http.post("/get-online-features", json=body(1, 1)).status_code == 200
        lookups: AsyncLookups = http.app.state.lookups  # type: ignore[attr-defined]
        held = http.portal.call(lookups.pool.getconn)  # type: ignore[union-attr]
        try:
            busy = http.post("/get-online-features", json=body(1, 1))
            metrics = http.get("/metrics").text
        finally:
            http.portal.call(lookups.pool.putconn, held)  # type: ignore[union-attr]
        again = http.post("/get-online-features", json=body(1, 1))
    assert busy.status_code == 503, busy.text
    assert "the online store failed to answer: PoolTimeout" in busy.json()["error"]
    assert "Traceback" not in busy.text
    assert "fsql_pool_connections_idle 0" in metrics.splitlines()
    assert again.status_code == 200


def terminate(dsn: str, pids: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS t(pid)", (pids,))


def test_every_connection_dropped_at_once_as_a_restart_does_costs_no_failed_lookup(
    project: Path, postgres_dsn: str
) -> None:
    with fsql.load_project(project).online_store(max_connections=4) as store:
        http = serving_client(create_app(store, ServerOptions()))
        lookups: AsyncLookups = http.app.state.lookups  # type: ignore[attr-defined]

        async def fill() -> list[int]:  # four connections open, so that all four are dead after
            held = [await lookups.pool.getconn() for _ in range(4)]
            for connection in held:
                await lookups.pool.putconn(connection)
            return await lookups.backend_pids()

        pids = http.portal.call(fill)  # type: ignore[union-attr]
        assert len(pids) == 4
        terminate(postgres_dsn, pids)
        after = [http.post("/get-online-features", json=body(d, 1)) for d in (1, 2, 3)]
        fresh = http.portal.call(lookups.backend_pids)  # type: ignore[union-attr]
    assert [response.status_code for response in after] == [200, 200, 200], after[0].text
    assert columns(after[0].json())[3] == ["d1", "d2"]
    assert not set(fresh) & set(pids)


def test_a_postgres_that_refuses_connections_is_a_503_and_health_recovers_with_it(
    project: Path,
    postgres_dsn: str,
    postgres_schema: str,
    lookup_role: str,  # noqa: F811
) -> None:
    """Postgres unreachable for the server, without stopping the shared one: its role may not log in
    and its connections are ended; then the role may log in again, as a server comes back."""
    from sqlalchemy.engine import make_url

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'GRANT USAGE ON SCHEMA "{postgres_schema}" TO "{lookup_role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{postgres_schema}" TO "{lookup_role}"')
    url = make_url(online_url(postgres_dsn)).set(username=lookup_role).render_as_string(hide_password=False)
    definitions = fsql.load_project(project).definitions
    with OnlineStore(url, schema=postgres_schema, definitions=definitions, max_connections=2) as store:
        http = serving_client(create_app(store, ServerOptions(pool_timeout=0.5, health_timeout=0.5)))
        lookups: AsyncLookups = http.app.state.lookups  # type: ignore[attr-defined]
        assert http.post("/get-online-features", json=body(1, 1)).status_code == 200
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{lookup_role}" NOLOGIN')
        terminate(postgres_dsn, http.portal.call(lookups.backend_pids))  # type: ignore[union-attr]
        down = [http.post("/get-online-features", json=body(1, 1)) for _ in range(2)]
        health = http.get("/health")
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{lookup_role}" LOGIN')
        # The pool reconnects in the background, with backoff: wait for its connection, as a probe would.
        http.portal.call(lookups.pool.wait, 60.0)  # type: ignore[union-attr]
        back = http.post("/get-online-features", json=body(1, 1))
        healthy = http.get("/health")
    for response in down:
        assert response.status_code == 503, response.text
        assert response.json()["error"].startswith("the online store failed to answer")
    assert health.status_code == 503
    assert "does not answer" in health.json()["error"]
    assert (back.status_code, healthy.status_code) == (200, 200), back.text


def test_async_lookups_equal_the_sync_store_and_raise_its_errors(project: Path) -> None:
    from fsql.errors import CompileError

    with fsql.load_project(project).online_store(max_connections=1) as store:
        rows = [{"driver_id": 3, "rider_id": 2}, {"driver_id": 404, "rider_id": 2}]

        async def both() -> Any:
            lookups = AsyncLookups(store)
            await lookups.open()
            try:
                found = await lookups.lookup(rows, service="both", features=None)
                with pytest.raises(CompileError, match="lacks key 'rider_id'"):
                    await lookups.lookup([{"driver_id": 1}], service="both", features=None)
                return found
            finally:
                await lookups.close()

        assert asyncio.run(both()) == store.lookup(rows, service="both")


async def queued_lookups(lookups: AsyncLookups, requests: list[list[dict[str, Any]]], service: str) -> Any:
    """Start every lookup while the pool's only connection is held, then free it: how many joined the
    first one's statement, and each lookup's answer (or error)."""
    await lookups.open()
    try:
        held = await lookups.pool.getconn()
        tasks = [asyncio.ensure_future(lookups.lookup(rows, service=service, features=None)) for rows in requests]
        for _ in range(20):  # let each task run up to its first wait
            await asyncio.sleep(0)
        queued = [len(batch) for batch in lookups._waiting.values()]
        await lookups.pool.putconn(held)
        return queued, await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await lookups.close()


def test_lookups_queued_for_a_connection_share_one_statement_and_each_gets_its_own_rows(project: Path) -> None:
    from fsql.errors import CompileError

    sizes = [1, 3, 2, 5, 1, 4]
    requests = [[{"driver_id": d + i, "rider_id": 1 + (d + i) % 6} for i in range(n)] for d, n in enumerate(sizes)]
    requests.insert(2, [{"driver_id": "7", "rider_id": 1}])  # refused alone, before it joins anything
    with fsql.load_project(project).online_store(max_connections=1) as store:
        queued, answers = asyncio.run(queued_lookups(AsyncLookups(store), requests, "both"))
        for rows, answer in zip(requests, answers, strict=True):
            if isinstance(rows[0]["driver_id"], str):
                assert isinstance(answer, CompileError) and "is bigint, not str" in str(answer)
            else:
                assert answer == store.lookup(rows, service="both")
    assert queued == [len(sizes)]


def test_derived_lookups_queued_together_keep_each_requests_fields(online_example: Path) -> None:  # noqa: F811
    from test_derived_invariant import SERVICE, T

    from fsql.build import BuildOptions

    project = fsql.load_project(online_example)
    project.build(BuildOptions(end=T))
    requests = [
        [{"rider_id": r, "driver_id": 1000 + r, "offered_fare": fare, "offered_at": T, "pickup_eta_at": eta}]
        for r, fare, eta in [(1, 12.5, T), (2, 0.0, None), (3, 30.0, T + timedelta(minutes=4))]
    ]
    requests.append([{**requests[0][0], "rider_id": 4}, {**requests[1][0], "rider_id": 5}])
    with project.online_store(max_connections=1) as store:
        queued, answers = asyncio.run(queued_lookups(AsyncLookups(store), requests, SERVICE))
        for rows, answer in zip(requests, answers, strict=True):
            assert answer == store.lookup(rows, service=SERVICE)
    assert queued == [len(requests)]


def test_integer_keys_sent_as_array_literals_keep_nulls_extremes_and_int_subclasses(project: Path) -> None:
    from enum import IntEnum

    class Driver(IntEnum):
        THREE = 3

    rows = [
        {"driver_id": None, "rider_id": 2**63 - 1},
        {"driver_id": Driver.THREE, "rider_id": -(2**63)},
        {"driver_id": 3, "rider_id": 2},
    ]
    with fsql.load_project(project).online_store(max_connections=1) as store:
        plan = store.plan("both", None, None)
        assert plan.encode(plan.params(rows, None))["key_0"] == "{NULL,3,3}"
        found = store.lookup(rows, service="both")
    assert [row[1] for row in found.values] == [None, "d3", "d3"]
    assert [s.value for s in found.views[1].statuses] == ["NOT_FOUND", "NOT_FOUND", "PRESENT"]


def test_a_full_batch_leaves_the_next_lookups_to_another_statement(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsql.online.aio as aio

    monkeypatch.setattr(aio, "BATCH_ROWS", 6)
    sizes = [1, 3, 2, 5, 1, 4]  # batches of 1+3+2, 5+1 and 4 rows
    requests = [[{"driver_id": d + i, "rider_id": 1 + (d + i) % 6} for i in range(n)] for d, n in enumerate(sizes)]
    with fsql.load_project(project).online_store(max_connections=1) as store:
        queued, answers = asyncio.run(queued_lookups(AsyncLookups(store), requests, "both"))
        for rows, answer in zip(requests, answers, strict=True):
            assert answer == store.lookup(rows, service="both")
    assert queued == [1]  # the last batch, still waiting when the connection was freed
