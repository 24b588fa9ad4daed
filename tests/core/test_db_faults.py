"""The database away, slow, full or dropping connections: 503 problems at once, never a hang
or a 500; a pool that renews itself; deadlocks retried. Multi-process faults (a worker killed,
PostgreSQL stopped under load) are in tests/system/test_faults.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database, RetryingRoute, SessionDep, writes
from service.core.settings import Settings
from service.main import create_app
from tests.support.databases import execute, make_settings, query, terminate_backends
from tests.support.factories import Factory, case_body

# A hang guard, not a timing claim: an answer that takes longer than this is a hang.
HANG = 60


BUMP = "UPDATE deadlock_probe SET n = n + 1 WHERE id = :id"


def retries(reason: str) -> float:
    return REGISTRY.get_sample_value("ruta_db_retries_total", {"reason": reason}) or 0.0


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            yield app, client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a host gone quiet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


async def test_answers_503_problem_when_nothing_listens_at_the_database_address(
    var_dir: Path,
) -> None:
    url = f"postgresql+asyncpg://ruta@127.0.0.1:{_free_port()}/ruta"
    async with serving(make_settings(url, var_dir)) as (_, client):
        login = await asyncio.wait_for(
            client.post("/v1/auth/token", data={"username": "u", "password": "p"}), HANG
        )
        ready = await asyncio.wait_for(client.get("/readyz"), HANG)
    assert_unavailable(login)
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"


async def test_answers_503_problem_when_the_database_never_answers_the_connect(
    var_dir: Path,
) -> None:
    with silent_listener() as port:
        url = f"postgresql+asyncpg://ruta@127.0.0.1:{port}/ruta"
        settings = make_settings(url, var_dir, db_connect_timeout_seconds=0.5)
        async with serving(settings) as (_, client):
            login = await asyncio.wait_for(
                client.post("/v1/auth/token", data={"username": "u", "password": "p"}), HANG
            )
    assert_unavailable(login)


@pytest.mark.postgres
async def test_answers_503_problem_when_no_pooled_connection_comes_free(
    settings: Settings, factory: Factory
) -> None:
    user = await factory.user()
    tight = settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.5})
    async with serving(tight) as (app, client):
        db: Database = app.state.db
        async with db.engine.connect() as held:  # the pool's one connection, taken
            await held.execute(sa.text("SELECT 1"))
            busy = await asyncio.wait_for(client.get("/v1/me", headers=user.headers), HANG)
        free = await client.get("/v1/me", headers=user.headers)
    assert_unavailable(busy)
    assert free.status_code == 200


@pytest.mark.postgres
async def test_pool_renews_itself_after_its_connections_were_cut_without_pre_ping(
    settings: Settings, factory: Factory
) -> None:
    user = await factory.user()
    async with serving(settings) as (app, client):
        db: Database = app.state.db
        # Recovery must not rest on the checkout ping (it costs a round trip per request and
        # may be turned off for speed): turn it off here.
        db.engine.pool._pre_ping = False
        assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
        async with db.engine.connect() as conn:
            [(pid,)] = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).all()
        await terminate_backends(settings, [pid])
        before = retries("disconnect")
        # The read that meets the dead connection runs again on a fresh one.
        met = await asyncio.wait_for(client.get("/v1/me", headers=user.headers), HANG)
        after = [(await client.get("/v1/me", headers=user.headers)).status_code for _ in range(3)]
    assert met.status_code == 200, met.text
    assert retries("disconnect") == before + 1
    assert after == [200, 200, 200]


@pytest.mark.postgres
async def test_a_keyed_post_on_a_cut_connection_runs_again_and_creates_once(
    settings: Settings, factory: Factory
) -> None:
    user = await factory.user()
    key = f"cut-{uuid.uuid4()}"
    body = case_body()
    async with serving(settings) as (app, client):
        db: Database = app.state.db
        db.engine.pool._pre_ping = False
        assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
        async with db.engine.connect() as conn:
            [(pid,)] = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).all()
        await terminate_backends(settings, [pid])
        headers = {**user.headers, "Idempotency-Key": key}
        first = await asyncio.wait_for(client.post("/v1/cases", json=body, headers=headers), HANG)
        again = await client.post("/v1/cases", json=body, headers=headers)
        assert first.status_code == 201, first.text
        created = await query(
            db, "SELECT count(*) FROM case_file WHERE id = :id", id=uuid.UUID(first.json()["id"])
        )
    assert retries("disconnect") >= 1
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert created == [(1,)]


@pytest.mark.postgres
async def test_a_unit_that_loses_a_deadlock_runs_again_and_writes_once(
    settings: Settings,
) -> None:
    db = Database(settings)
    await execute(db, "CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int NOT NULL)")
    await execute(db, "INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)")
    await execute(db, "CREATE TABLE deadlock_probe_log (unit int NOT NULL)")
    holds_first = {1: asyncio.Event(), 2: asyncio.Event()}
    attempts = {1: 0, 2: 0}

    def unit(first: int, second: int) -> Callable[[AsyncSession], Awaitable[None]]:
        async def work(session: AsyncSession) -> None:
            attempts[first] += 1
            await (await session.connection()).execute(sa.text(BUMP), {"id": first})
            await (await session.connection()).execute(
                sa.text("INSERT INTO deadlock_probe_log VALUES (:id)"), {"id": first}
            )
            holds_first[first].set()
            # Each waits until the other holds its first row, then asks for it: a deadlock
            # on the first attempt; PostgreSQL rolls one side back, which runs again.
            await holds_first[second].wait()
            await (await session.connection()).execute(sa.text(BUMP), {"id": second})

        return work

    before = retries("deadlock")
    try:
        await asyncio.wait_for(asyncio.gather(db.run(unit(1, 2)), db.run(unit(2, 1))), HANG)
        rows = await query(db, "SELECT id, n FROM deadlock_probe ORDER BY id")
        logged = await query(
            db, "SELECT unit, count(*) FROM deadlock_probe_log GROUP BY unit ORDER BY 1"
        )
    finally:
        await execute(db, "DROP TABLE deadlock_probe, deadlock_probe_log")
        await db.dispose()
    assert sorted(attempts.values()) == [1, 2]  # one side lost and ran again
    assert retries("deadlock") == before + 1
    assert rows == [(1, 2), (2, 2)]  # each unit's two updates, once
    assert logged == [(1, 1), (2, 1)]


@pytest.mark.postgres
async def test_a_request_that_loses_a_deadlock_runs_again_and_writes_once(
    settings: Settings,
) -> None:
    """The same, through HTTP: two requests of a route whose transaction locks two rows in
    opposite orders; the loser's whole request (its session committed inside the attempt)
    runs again and answers 200."""
    db = Database(settings)
    await execute(db, "CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int NOT NULL)")
    await execute(db, "INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)")
    await execute(db, "CREATE TABLE deadlock_probe_log (unit int NOT NULL)")
    holds_first = {1: asyncio.Event(), 2: asyncio.Event()}
    attempts = {1: 0, 2: 0}
    router = APIRouter(route_class=RetryingRoute)

    @router.get("/probe/{first}/{second}")
    @writes
    async def probe(first: int, second: int, session: SessionDep) -> dict[str, int]:
        attempts[first] += 1
        connection = await session.connection()
        await connection.execute(sa.text(BUMP), {"id": first})
        await connection.execute(
            sa.text("INSERT INTO deadlock_probe_log VALUES (:id)"), {"id": first}
        )
        holds_first[first].set()
        await holds_first[second].wait()
        await connection.execute(sa.text(BUMP), {"id": second})
        return {"attempt": attempts[first]}

    before = retries("deadlock")
    try:
        async with serving(settings) as (app, client):
            app.include_router(router)
            answers = await asyncio.wait_for(
                asyncio.gather(client.get("/probe/1/2"), client.get("/probe/2/1")), HANG
            )
        rows = await query(db, "SELECT id, n FROM deadlock_probe ORDER BY id")
        logged = await query(
            db, "SELECT unit, count(*) FROM deadlock_probe_log GROUP BY unit ORDER BY 1"
        )
    finally:
        await execute(db, "DROP TABLE deadlock_probe, deadlock_probe_log")
        await db.dispose()
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["attempt"] for a in answers) == [1, 2]
    assert retries("deadlock") == before + 1
    assert rows == [(1, 2), (2, 2)]
    assert logged == [(1, 1), (2, 1)]
