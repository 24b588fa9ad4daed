"""`Database.driven_transaction` (PostgreSQL): a transaction whose statements asyncpg sends
itself (the audit appender's batches); and a session's own statements sent by asyncpg in its
transaction (`session_rows`, `connection_rows`: the intake's). Committed when the block ends,
rolled back when it raises, the connection back in the pool either way; a refusal is
SQLAlchemy's error, a connection found gone answers 503 and is replaced, a cancelled one is
discarded; the statement counter sees each statement; rows and bound values are
SQLAlchemy's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from service.audit.models import AuditChainHead
from service.core.db import (
    Database,
    DatabaseUnavailable,
    connection_rows,
    lock_any_of_driven,
    retry_reason,
    session_rows,
    table_of,
)
from service.core.settings import Settings
from tests.support.databases import execute, query, terminate_backends
from tests.support.statements import counting_statements

_METADATA = sa.MetaData()
# A table of the test's own: what it writes must not touch the app's (its audit chains).
THINGS = sa.Table(
    "ruta_test_driven_thing",
    _METADATA,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
INSERT = sa.insert(THINGS)
BY_LABEL = sa.select(THINGS).where(THINGS.c.label == sa.bindparam("label", type_=sa.String()))


@pytest.fixture
async def things(db: Database) -> AsyncIterator[None]:
    await execute(
        db,
        "CREATE TABLE ruta_test_driven_thing (id uuid PRIMARY KEY, label varchar(40) NOT NULL,"
        " details json NOT NULL, at timestamptz NOT NULL)",
    )
    try:
        yield
    finally:
        await execute(db, "DROP TABLE ruta_test_driven_thing")


def _thing(label: str) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "label": label,
        "details": {"nested": [1, "two", None]},
        "at": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    }


def _checked_out(db: Database) -> int:
    return int(db.engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def _cancelled_while_the_server_sleeps(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `work` (a statement the server answers in seconds) and cancel it mid-exchange."""
    task = asyncio.create_task(work())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.postgres
async def test_its_work_is_committed_when_the_block_ends(db: Database, things: None) -> None:
    rows = [_thing("kept"), _thing("kept")]
    async with db.driven_transaction() as transaction:
        await transaction.insert_many(INSERT, rows)
        # Its own rows, read in it, as SQLAlchemy reads them (JSON decoded, an aware instant).
        read = await transaction.fetch(BY_LABEL, {"label": "kept"})
        assert sorted((r.id, r.details, r.at) for r in read) == sorted(
            (r["id"], r["details"], r["at"]) for r in rows
        )
    assert _checked_out(db) == 0
    seen = await query(db, "SELECT id FROM ruta_test_driven_thing WHERE label = 'kept'")
    assert {i for (i,) in seen} == {r["id"] for r in rows}


@pytest.mark.postgres
async def test_nothing_is_written_when_the_block_raises(db: Database, things: None) -> None:
    async def failing() -> None:
        async with db.driven_transaction() as transaction:
            await transaction.insert_many(INSERT, [_thing("dropped")])
            raise LookupError("the caller's own failure, met unchanged")

    with pytest.raises(LookupError):
        await failing()
    assert _checked_out(db) == 0
    assert await query(db, "SELECT id FROM ruta_test_driven_thing") == []
    async with db.driven_transaction() as transaction:  # the connection is usable
        await transaction.insert_many(INSERT, [_thing("after")])
    assert len(await query(db, "SELECT id FROM ruta_test_driven_thing")) == 1


@pytest.mark.postgres
async def test_a_statement_the_database_refuses_is_its_error_and_writes_nothing(
    db: Database, things: None
) -> None:
    twice = _thing("twice")

    async def refused() -> None:
        async with db.driven_transaction() as transaction:
            await transaction.insert_many(INSERT, [_thing("first")])
            await transaction.insert_many(INSERT, [twice, twice])  # the same key

    with pytest.raises(sa.exc.DBAPIError) as raised:
        await refused()
    assert not raised.value.connection_invalidated
    assert "ruta_test_driven_thing" in str(raised.value.statement)
    assert _checked_out(db) == 0
    assert await query(db, "SELECT id FROM ruta_test_driven_thing") == []


@pytest.mark.postgres
async def test_each_statement_is_counted(db: Database, things: None) -> None:
    with counting_statements(db) as counted:
        async with db.driven_transaction() as transaction:
            await transaction.insert_many(INSERT, [_thing("a"), _thing("b")])
            await transaction.fetch(BY_LABEL, {"label": "a"})
    assert [s.split()[0] for s in counted.statements] == ["INSERT", "SELECT"]


@pytest.mark.postgres
async def test_a_connection_found_gone_answers_503_and_is_replaced(settings: Settings) -> None:
    db = Database(settings.model_copy(update={"db_pool_size": 1}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    try:
        async with db.driven_transaction() as transaction:
            [(first,)] = await transaction.fetch(pid, {})
        await terminate_backends(settings, [first])
        with pytest.raises(DatabaseUnavailable) as raised:
            async with db.driven_transaction() as transaction:
                await transaction.fetch(pid, {})
        assert retry_reason(raised.value) == "disconnect"
        async with db.driven_transaction() as transaction:
            [(second,)] = await transaction.fetch(pid, {})
        assert second != first
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_transaction_cancelled_mid_statement_gives_its_place_back(
    settings: Settings,
) -> None:
    db = Database(settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 2}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    slow = sa.select(sa.func.pg_sleep(5).label("slept"))

    async def waiting() -> None:
        async with db.driven_transaction() as transaction:
            await transaction.fetch(slow, {})

    try:
        async with db.driven_transaction() as transaction:
            [(first,)] = await transaction.fetch(pid, {})
        await _cancelled_while_the_server_sleeps(waiting)
        assert _checked_out(db) == 0
        async with db.driven_transaction() as transaction:
            [(second,)] = await transaction.fetch(pid, {})
        assert second != first  # the connection left mid-exchange was discarded
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_chain_head_is_locked_as_lock_any_of_locks_it(db: Database) -> None:
    """Two transactions at once lock two different heads (SKIP LOCKED), as the session's."""
    table = table_of(AuditChainHead)
    first_locked = asyncio.Event()
    release = asyncio.Event()
    chains: list[int] = []

    async def holder() -> None:
        async with db.driven_transaction() as transaction:
            row = await lock_any_of_driven(transaction, table, key=table.c.chain, pick=lambda: 0)
            chains.append(row.chain)
            first_locked.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await first_locked.wait()
    try:
        async with db.driven_transaction() as transaction:
            row = await lock_any_of_driven(transaction, table, key=table.c.chain, pick=lambda: 0)
            chains.append(row.chain)
    finally:
        release.set()
        await task
    assert len(set(chains)) == 2


async def test_not_inside_a_session(db: Database) -> None:
    """A second pooled connection per request would starve the pool under load."""
    async with db.session():
        with pytest.raises(RuntimeError):
            async with db.driven_transaction():
                pass


async def test_not_on_sqlite(db: Database) -> None:
    if db.dialect == "postgresql":
        pytest.skip("SQLite's refusal")
    with pytest.raises(TypeError):
        async with db.driven_transaction():
            pass


# A session's own statements sent by the driver (core/db.session_rows, connection_rows):
# in the session's transaction, begun by them when they come first.


@pytest.mark.postgres
async def test_a_sessions_statements_by_the_driver_are_in_its_transaction(
    db: Database, things: None
) -> None:
    row = _thing("in-session")
    async with db.session() as session:
        # The session's first statement: it begins the transaction, as SQLAlchemy's would.
        inserted = await session_rows(session, sa.insert(THINGS).returning(THINGS.c.id), row)
        assert [r.id for r in inserted] == [row["id"]]
        # Seen in the same transaction through SQLAlchemy, not yet from outside.
        connection = await session.connection()
        own = (await connection.execute(sa.select(THINGS.c.details))).scalars().all()
        assert own == [row["details"]]
        assert await query(db, "SELECT id FROM ruta_test_driven_thing") == []
        read = await session_rows(session, BY_LABEL, {"label": "in-session"})
        assert [(r.id, r.details, r.at) for r in read] == [(row["id"], row["details"], row["at"])]
    assert len(await query(db, "SELECT id FROM ruta_test_driven_thing")) == 1


@pytest.mark.postgres
async def test_a_session_rolled_back_takes_the_drivers_statements_with_it(
    db: Database, things: None
) -> None:
    async def failing() -> None:
        async with db.session() as session:
            await session_rows(session, INSERT, _thing("rolled back"))
            raise LookupError("after the statement")

    with pytest.raises(LookupError):
        await failing()
    assert await query(db, "SELECT id FROM ruta_test_driven_thing") == []


@pytest.mark.postgres
async def test_a_refusal_in_a_session_is_sqlalchemys_own_error(db: Database, things: None) -> None:
    twice = _thing("twice")

    async def refused() -> None:
        async with db.session() as session:
            await session_rows(session, INSERT, twice)
            await session_rows(session, INSERT, twice)

    with pytest.raises(sa.exc.IntegrityError):
        await refused()
    assert await query(db, "SELECT id FROM ruta_test_driven_thing") == []


@pytest.mark.postgres
async def test_several_rows_in_one_exchange_and_each_statement_counted(
    db: Database, things: None
) -> None:
    rows = [_thing("many"), _thing("many"), _thing("many")]

    def insert_all(sync_session: Any) -> None:
        connection_rows(sync_session.connection(), INSERT, rows)

    with counting_statements(db) as counted:
        async with db.session() as session:
            await session.run_sync(insert_all)
            assert len(await session_rows(session, BY_LABEL, {"label": "many"})) == 3
    assert [s.split()[0] for s in counted.statements] == ["INSERT", "SELECT"]


@pytest.mark.postgres
async def test_a_session_cancelled_mid_statement_leaves_no_connection_behind(
    settings: Settings,
) -> None:
    """A request cancelled while its session's statement waits for the server: the
    connection, stopped mid-exchange, is discarded, its place in the pool given back; the
    next session works on a new one."""
    db = Database(settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 2}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))
    slow = sa.select(sa.func.pg_sleep(5).label("slept"))

    async def backend() -> int:
        async with db.session() as session:
            [(found,)] = await session_rows(session, pid, {})
            return int(found)

    async def waiting() -> None:
        async with db.session() as session:
            await session_rows(session, slow, {})

    try:
        first = await backend()
        await _cancelled_while_the_server_sleeps(waiting)
        assert _checked_out(db) == 0
        assert await backend() != first
    finally:
        await db.dispose()


async def test_elsewhere_a_sessions_statements_go_through_sqlalchemy(db: Database) -> None:
    """SQLite: the same rows, by SQLAlchemy's execution (nothing of the driver's)."""
    async with db.session() as session:
        rows = await session_rows(session, sa.select(sa.literal(7).label("seven")), {})
    assert [r.seven for r in rows] == [7]


@pytest.mark.postgres
@pytest.mark.parametrize("idle", [0.0, 0.5], ids=["at-once", "after-a-pause"])
@pytest.mark.parametrize("by", ["driver", "sqlalchemy"])
async def test_a_session_meeting_a_connection_cut_while_idle_answers_503(
    settings: Settings, idle: float, by: str
) -> None:
    """Cut at once, or after a pause in which the server's farewell reached the connection
    idle in the pool (asyncpg then fails the next statement with an InternalClientError,
    "another operation is in progress", which SQLAlchemy does not count a disconnect): a
    disconnect either way, whichever sends the statement: 503, and a new connection after."""
    db = Database(settings.model_copy(update={"db_pool_size": 1}))
    pid = sa.select(sa.func.pg_backend_pid().label("pid"))

    async def backend() -> int:
        async with db.session() as session:
            if by == "driver":
                [(found,)] = await session_rows(session, pid, {})
            else:
                found = (await (await session.connection()).execute(pid)).scalar_one()
            return int(found)

    try:
        first = await backend()
        await terminate_backends(settings, [first])
        await asyncio.sleep(idle)
        with pytest.raises(DatabaseUnavailable) as raised:
            await backend()
        assert retry_reason(raised.value) == "disconnect"
        assert await backend() != first
    finally:
        await db.dispose()
