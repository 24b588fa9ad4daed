"""`Database.fetch`: one SELECT outside any transaction, without a session, sent by the driver
itself (core/driven.py: asyncpg, or sqlite3 in its aiosqlite thread). Its rows hold what
SQLAlchemy's own execution gives, value for value and type for type; the statement counter
sees it; a connection found dead is replaced and the read may run again; no request holds two
pooled connections at once or checks out twice when it has a session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.util import greenlet_spawn

from service.cases.models import CaseFile, Identification
from service.core.db import (
    Database,
    DatabaseUnavailable,
    get_session,
    retry_reason,
    retrying,
    table_of,
)
from service.core.driven import driven, fetch_driven
from service.core.settings import Settings
from service.identity.dependencies import get_principal
from service.identity.rules import Role
from service.persons.models import PersonKey
from tests.support.databases import execute, terminate_backends
from tests.support.factories import Factory, case_body, create_case
from tests.support.statements import counting_statements, pooled_connections


def _every_kind_of_column() -> sa.Select[tuple[object, ...]]:
    """A case's identification, case and data key: uuids, dates, instants, text, JSON, bytes,
    booleans, integers and NULLs; a literal value the statement carries, and `case_id`
    bound twice (one parameter, $1, sent once)."""
    ident, case, key = table_of(Identification), table_of(CaseFile), table_of(PersonKey)
    case_id = sa.bindparam("case_id", type_=sa.Uuid())
    return (
        sa.select(
            ident,
            *(c.label(f"case_file_{c.name}") for c in case.c),
            key.c.wrapped_key,
            key.c.master_key_id,
            sa.literal("fixed text").label("fixed"),
            sa.null().label("absent"),
            (case.c.id == case_id).label("same"),
        )
        .select_from(
            ident.join(case, case.c.id == ident.c.case_id).outerjoin(
                key, key.c.person_id == case.c.person_id
            )
        )
        .where(ident.c.case_id == case_id)
    )


EVERY_KIND = _every_kind_of_column()


async def test_rows_hold_what_sqlalchemy_gives_value_for_value_and_type_for_type(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP")
    case = await create_case(client, police)
    params = {"case_id": uuid.UUID(case["id"])}

    fetched = await db.fetch(EVERY_KIND, params)
    async with db.session(write=False) as session:
        expected = (await (await session.connection()).execute(EVERY_KIND, params)).all()

    assert len(fetched) == len(expected) == 1
    assert list(fetched[0]._mapping) == list(expected[0]._mapping)
    assert tuple(fetched[0]) == tuple(expected[0])
    assert [type(v) for v in fetched[0]] == [type(v) for v in expected[0]]
    row = fetched[0]
    # Attribute access, as callers read rows; the JSON column decoded, the key bytes whole.
    assert row.indicators == ["no identity documents", "debt to employer"]
    assert isinstance(row.wrapped_key, bytes)
    assert row.wrapped_key
    assert row.fixed == "fixed text"
    assert row.absent is None
    assert row.same is True
    assert isinstance(row.created_at, datetime)
    assert row.created_at.tzinfo is not None
    assert row.created_at <= datetime.now(UTC)


async def test_no_row_is_an_empty_list(db: Database) -> None:
    assert list(await db.fetch(EVERY_KIND, {"case_id": uuid.uuid4()})) == []


async def test_a_missing_parameter_is_refused_before_anything_is_sent(db: Database) -> None:
    with counting_statements(db) as counted, pytest.raises(sa.exc.SQLAlchemyError) as raised:
        await db.fetch(EVERY_KIND, {})
    assert "A value is required for bind parameter 'case_id'" in str(raised.value)
    assert counted.statements == []


def test_arguments_are_those_sqlalchemy_would_bind() -> None:
    """The parameters of a call, bound without SQLAlchemy's construct_params where the
    statement allows (its literals kept from compilation), as construct_params binds them;
    a value computed at execution (a callable) is bound by construct_params at every call."""
    dialect = postgresql_asyncpg.dialect()  # type: ignore[no-untyped-call]
    case_id = uuid.uuid4()
    made = driven(dialect, EVERY_KIND)
    assert made is not None
    assert made.literal is not None
    assert made.required == {"case_id"}
    slow = made.compiled.construct_params({"case_id": case_id}, _check=True)
    assert made.arguments({"case_id": case_id}) == [slow[name] for name in made.parameters]
    assert "fixed text" in made.arguments({"case_id": case_id})

    drawn = iter(["first", "second"])
    computed = sa.select(
        sa.bindparam("drawn", callable_=lambda: next(drawn), type_=sa.String()).label("v")
    ).where(table_of(CaseFile).c.id == sa.bindparam("case_id", type_=sa.Uuid()))
    made = driven(dialect, computed)
    assert made is not None
    assert made.literal is None
    assert made.arguments({"case_id": case_id})[0] == "first"
    assert made.arguments({"case_id": case_id})[0] == "second"


def test_a_statement_is_compiled_for_each_dialect_it_is_sent_to() -> None:
    """One statement, two dialects (a process may hold both): each its own SQL and binding."""
    on_postgres = driven(postgresql_asyncpg.dialect(), EVERY_KIND)  # type: ignore[no-untyped-call]
    on_sqlite = driven(sqlite_aiosqlite.dialect(), EVERY_KIND)
    assert on_postgres is not None
    assert on_sqlite is not None
    assert "$1" in on_postgres.sql
    assert "?" not in on_postgres.sql
    assert "?" in on_sqlite.sql
    assert "$1" not in on_sqlite.sql
    case_id = uuid.uuid4()
    # Each binds a uuid as its database stores one.
    assert case_id in on_postgres.arguments({"case_id": case_id})
    assert case_id.hex in on_sqlite.arguments({"case_id": case_id})
    assert driven(postgresql_asyncpg.dialect(), EVERY_KIND) is on_postgres  # type: ignore[no-untyped-call]


async def test_the_statement_is_counted_as_one_round_trip(db: Database) -> None:
    with counting_statements(db) as counted:
        await db.fetch(EVERY_KIND, {"case_id": uuid.uuid4()})
    assert len(counted.statements) == 1
    assert counted.statements[0].startswith("SELECT identification.id")


async def test_only_a_select_is_run(db: Database) -> None:
    # Without a transaction, a write would commit alone: refused before it is sent.
    update = sa.update(table_of(CaseFile)).values(is_witness=True)
    with pytest.raises(TypeError):
        await db.fetch(update, {})  # type: ignore[arg-type]


async def test_no_fetch_inside_a_session(db: Database) -> None:
    """The task holding a session may not take a second pooled connection with `fetch` (the
    burst stall of session 10): refused inside any session, nested ones included, and
    allowed again once the task's sessions closed, whether they committed or failed."""
    one = sa.select(sa.literal(1).label("one"))
    async with db.session(write=False, transaction=False) as session:
        await (await session.connection()).execute(one)
        with pytest.raises(RuntimeError, match="inside a session"):
            await db.fetch(one)
        async with db.session() as inner:
            await (await inner.connection()).execute(one)
        with pytest.raises(RuntimeError, match="inside a session"):
            await db.fetch(one)
    with pytest.raises(ValueError, match="the work failed"):
        async with db.session():
            raise ValueError("the work failed")
    assert [row.one for row in await db.fetch(one)] == [1]


async def test_a_statement_refused_by_the_database_is_its_error_and_changes_nothing(
    db: Database,
) -> None:
    """A statement the database refuses (no such table) comes back as SQLAlchemy wraps the
    driver's error, the connection not taken for dead, and the next read runs."""
    missing: sa.Select[Any] = sa.select(sa.column("x")).select_from(sa.table("no_such_table"))
    with pytest.raises(sa.exc.DBAPIError) as raised:
        await db.fetch(missing)
    assert not raised.value.connection_invalidated
    assert "no_such_table" in str(raised.value.orig)
    assert [tuple(r) for r in await db.fetch(sa.select(sa.literal(1)))] == [(1,)]


async def test_a_statement_refused_on_the_pools_path_is_its_error_too(db: Database) -> None:
    """The same refusal on a pooled connection (on SQLite: the path of a read the event
    loop's connection found busy), not only on the loop's own."""
    missing: sa.Select[Any] = sa.select(sa.column("x")).select_from(sa.table("no_such_table"))
    made = driven(db.engine.dialect, missing)
    assert made is not None
    with pytest.raises(sa.exc.DBAPIError) as raised:
        await fetch_driven(db.engine, made, {})
    assert not raised.value.connection_invalidated
    assert "no_such_table" in str(raised.value.orig)


async def test_an_error_of_the_statement_leaves_the_connection_usable(db: Database) -> None:
    divided = sa.select(sa.literal(1) / sa.bindparam("by", type_=sa.Integer()))
    if db.dialect == "postgresql":
        with pytest.raises(sa.exc.DBAPIError) as raised:
            await db.fetch(divided, {"by": 0})
        assert not raised.value.connection_invalidated
    assert [tuple(r) for r in await db.fetch(divided, {"by": 1})] == [(1,)]


async def test_a_sqlite_connection_whose_thread_ended_is_replaced(settings: Settings) -> None:
    """On the pool's path (a read SQLite found busy for the event loop's connection),
    aiosqlite's own word for a connection closed under the pool ("no active connection") is
    a disconnect, as SQLAlchemy's adapter makes it: invalidated, and the next read meets a
    new connection."""
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("aiosqlite's connections")
    db = Database(settings.model_copy(update={"db_pool_size": 1}))
    one = sa.select(sa.literal(1).label("one"))
    made = driven(db.engine.dialect, one)
    assert made is not None
    try:
        await fetch_driven(db.engine, made, {})  # the pool's one connection, idle in it now
        pooled = await greenlet_spawn(db.engine.sync_engine.pool.connect)
        thread = pooled.driver_connection
        assert thread is not None
        await greenlet_spawn(pooled.close)
        await thread.close()  # its thread ends; the pool still holds it

        with pytest.raises(sa.exc.DBAPIError) as raised:
            await fetch_driven(db.engine, made, {})
        assert raised.value.connection_invalidated
        assert [row.one for row in await fetch_driven(db.engine, made, {})] == [1]
    finally:
        await db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("idle", [0.0, 0.5], ids=["at-once", "after-a-pause"])
async def test_a_connection_found_dead_is_replaced_and_the_read_runs_again(
    settings: Settings, idle: float
) -> None:
    """Cut at once, or after a pause in which the server's farewell reached the idle
    connection (asyncpg then fails the next statement with an InternalClientError rather
    than a connection error): either way 503 and a new connection."""
    db = Database(settings.model_copy(update={"db_pool_size": 2}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    try:
        [(first,)] = await db.fetch(pid)
        await terminate_backends(settings, [first])
        await asyncio.sleep(idle)

        with pytest.raises(DatabaseUnavailable) as raised:
            await db.fetch(pid)
        assert retry_reason(raised.value) == "disconnect"
        # Run again (as a reading request is), it meets a new connection.
        [(second,)] = await retrying(lambda: db.fetch(pid), retries=2, may_rerun=lambda _: True)
        assert second != first
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_read_cancelled_while_it_waits_for_the_server_gives_its_connection_back(
    settings: Settings,
) -> None:
    """A request cancelled (its client gone, a timeout) in the middle of a read: the
    connection, stopped anywhere in its exchange with the server, is discarded and its place
    in the pool given back, never handed to the next read; the reads after it answer."""
    db = Database(settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 2}))
    slow = sa.select(sa.func.pg_sleep(5).label("slept"), sa.func.pg_backend_pid().label("pid"))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    try:
        [(first,)] = await db.fetch(pid)
        reading = asyncio.create_task(db.fetch(slow))
        await asyncio.sleep(0.3)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        pool = db.engine.sync_engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        # The one pooled connection: a new one, not the one left mid-exchange.
        [(second,)] = await db.fetch(pid)
        assert second != first
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_every_connection_opened_before_the_dead_one_is_replaced(
    settings: Settings,
) -> None:
    """As SQLAlchemy does on a disconnect: after a restart every pooled connection is dead,
    and a read must not meet them one after another."""
    db = Database(settings.model_copy(update={"db_pool_size": 3}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    try:
        async with db.engine.connect() as a, db.engine.connect() as b:
            pids = [
                (await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() for c in (a, b)
            ]
        await terminate_backends(settings, pids)
        with pytest.raises(DatabaseUnavailable):
            await db.fetch(pid)
        # The one retry `retrying` allows after a disconnect is enough.
        [(new,)] = await retrying(lambda: db.fetch(pid), retries=1, may_rerun=lambda _: True)
        assert new not in pids
    finally:
        await db.dispose()


async def test_no_request_holds_two_pooled_connections_or_queues_twice(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    """A request that held its session's connection while waiting for another (`fetch`)
    would let a burst of them take the whole pool and wait for each other until its timeout;
    one that checked out twice in a row would queue twice when the pool is saturated (503s
    under load). So: a route with a session reads its principal in it, one connection for
    the whole request; a route without one (`/v1/me`, the case read) reads everything with
    `fetch`, one connection at a time. The principal is read at every request here (the
    test settings keep no cache). The audited read of a person reads like the case read,
    then hands its event to the audit appender, whose transaction (one more connection, one
    at a time) under load carries the events of many requests."""
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    path = f"/v1/cases/{case['id']}"
    # The principal, then the case (then the event's transaction). On SQLite those reads
    # take none: they run on the event loop's own connection (core/sqlite_driver.LoopReader).
    reads = 2 if db.dialect == "postgresql" else 0
    one_at_a_time = {"/v1/me": reads // 2, path: reads, f"{path}/person": reads + 1}
    in_one_session = [
        ("GET", "/v1/cases", None),
        ("GET", f"{path}/transitions", None),
        ("POST", "/v1/cases", case_body()),
    ]
    for url, checkouts in one_at_a_time.items():
        with pooled_connections(db) as seen:
            response = await client.get(url, headers=police.headers)
        assert response.status_code == 200, response.text
        assert (url, seen["most"], seen["all"]) == (url, min(checkouts, 1), checkouts)
    for method, url, body in in_one_session:
        with pooled_connections(db) as seen:
            response = await client.request(method, url, json=body, headers=police.headers)
        assert response.status_code < 300, response.text
        assert (url, seen["most"], seen["all"]) == (url, 1, 1)


def test_the_principal_takes_no_session_of_its_own(app: FastAPI) -> None:
    """`get_principal` asks for the request's session only when its route has one
    (`opens_session`): a dependency on it would open one for `/v1/me` and the case read."""
    dependant = next(
        route.dependant
        for route in _routes(app.routes)
        if route.path == "/v1/me" and "GET" in (route.methods or set())
    )
    calls: list[Any] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        calls.append(current.call)
        pending.extend(current.dependencies)
    assert get_principal in calls  # the security scheme instance itself
    assert get_session not in calls


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # a router included in the app
            yield from _routes(route.original_router.routes)


@pytest.mark.postgres
async def test_a_server_that_refuses_the_connection_answers_503(settings: Settings) -> None:
    """Refused at connect with a SQLSTATE (here 53300, too many connections for the role, as
    a full server answers): wrapped as SQLAlchemy wraps it for a session, so 503."""
    role = f"ruta_full_{uuid.uuid4().hex[:8]}"
    admin = Database(settings)
    await execute(admin, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    url = make_url(settings.database_url).set(username=role)
    db = Database(settings.model_copy(update={"database_url": url.render_as_string(False)}))
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            await db.fetch(sa.select(sa.literal(1).label("one")))
        assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
        assert raised.value.__cause__.orig.sqlstate == "53300"  # type: ignore[union-attr]
    finally:
        await db.dispose()
        await execute(admin, f"DROP ROLE {role}")
        await admin.dispose()
