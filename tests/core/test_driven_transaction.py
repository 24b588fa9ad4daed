"""`Database.driven_transaction` (PostgreSQL): a transaction whose statements asyncpg sends
itself (the audit appender's batches). Committed when its block ends and rolled back when
it raises, its connection back in the pool either way; a refusal is SQLAlchemy's error, a
connection found gone answers 503 and is replaced, a cancelled one is discarded; the
statement counter sees each statement; its rows and bound values are SQLAlchemy's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from service.audit.models import AuditChainHead
from service.core.db import (
    Database,
    DatabaseUnavailable,
    lock_any_of_driven,
    retry_reason,
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
        task = asyncio.create_task(waiting())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
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
