"""SQLite's one-hop adapter (service/core/sqlite_driver.py): one call into aiosqlite's thread
per statement, and the behaviour a DBAPI cursor owes. On a SQLite file of its own, whatever
database the run targets."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.core.db import Database
from service.core.sqlite_driver import OneHopConnection, loop_reader_for
from tests.support.databases import make_settings


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made into aiosqlite connections' threads, by name of the function run."""
    calls: list[str] = []
    original: Callable[..., Any] = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"
    database = Database(make_settings(url, tmp_path), url=url)
    async with database.engine.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, code TEXT UNIQUE NOT NULL, n INTEGER)"
        )
    yield database
    await database.dispose()


async def _statement_calls(engine: AsyncEngine, calls: list[str]) -> int:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))  # the connection is set up by now
        before = len(calls)
        rows = (await conn.execute(sa.text("SELECT code FROM item ORDER BY id"))).all()
        assert rows == []
        return len(calls) - before


async def test_a_statement_is_one_call_into_the_connections_thread(
    db: Database, thread_calls: list[str], tmp_path: Path
) -> None:
    assert await _statement_calls(db.engine, thread_calls) == 1
    # SQLAlchemy's own adapter, for comparison: a cursor opened, executed, fetched, closed.
    plain = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    try:
        assert await _statement_calls(plain, thread_calls) == 4
    finally:
        await plain.dispose()


async def test_the_database_uses_it_for_aiosqlite(db: Database) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneHopConnection)


async def test_rows_counts_ids_and_errors_are_those_of_a_dbapi_cursor(db: Database) -> None:
    item = sa.table("item", sa.column("id"), sa.column("code"), sa.column("n"))
    async with db.engine.begin() as conn:
        inserted = await conn.execute(sa.insert(item).values(code="a", n=1))
        assert inserted.lastrowid == 1
        many = await conn.execute(sa.insert(item), [{"code": "b", "n": 2}, {"code": "c", "n": 3}])
        assert many.rowcount == 2
        updated = await conn.execute(sa.update(item).where(item.c.n >= 2).values(n=item.c.n * 10))
        assert updated.rowcount == 2
        result = await conn.execute(sa.select(item.c.code, item.c.n).order_by(item.c.id))
        assert list(result.keys()) == ["code", "n"]
        assert result.all() == [("a", 1), ("b", 20), ("c", 30)]
        none = await conn.execute(sa.select(item.c.code).where(item.c.n > 100))
        assert none.first() is None
    async with db.engine.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(sa.insert(item).values(code="a", n=9))
        await conn.rollback()
        with pytest.raises(sa.exc.OperationalError):
            await conn.execute(sa.text("SELECT nothing FROM nowhere"))
        await conn.rollback()
        # A server-side (streamed) read keeps SQLAlchemy's own cursor, and works.
        streamed = await conn.stream(sa.select(item.c.code).order_by(item.c.id))
        assert [row.code async for row in streamed] == ["a", "b", "c"]


async def test_a_rolled_back_transaction_leaves_nothing(db: Database) -> None:
    item = sa.table("item", sa.column("code"), sa.column("n"))
    async with db.session() as session:
        await (await session.connection()).execute(sa.insert(item).values(code="kept", n=1))

    async def failing() -> None:
        async with db.session() as session:
            await (await session.connection()).execute(sa.insert(item).values(code="gone", n=2))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await failing()
    async with db.engine.connect() as conn:
        codes = (await conn.execute(sa.text("SELECT code FROM item"))).scalars().all()
    assert codes == ["kept"]


async def test_a_read_outside_a_transaction_is_one_call_and_no_rollback(
    db: Database, thread_calls: list[str]
) -> None:
    """A request that only reads runs without BEGIN; SQLAlchemy still rolls back the
    transaction it began when the connection closes. Outside a transaction sqlite3's
    ROLLBACK does nothing, so it makes no call into the thread: one call per statement."""
    one = sa.select(sa.literal(1).label("one"))
    await db.fetch(one)  # the pool's connection is set up by now
    before = len(thread_calls)
    assert [row.one for row in await db.fetch(one)] == [1]
    async with db.session(write=False, transaction=False) as session:
        await (await session.connection()).execute(one)
    # Database.fetch's statement runs on the event loop's thread (LoopReader): no call; the
    # session's cursor, one.
    assert thread_calls[before:] == ["_execute"]


async def test_an_open_transaction_is_still_rolled_back_when_its_connection_closes(
    db: Database,
) -> None:
    """Closing a connection whose transaction is open (BEGIN sent, a row written, never
    committed) rolls it back in the thread, as before: the write is gone and the database is
    not left locked."""
    item = sa.table("item", sa.column("code"), sa.column("n"))
    async with db.engine.connect() as conn:  # BEGIN (DEFERRED), then the write lock
        await conn.execute(sa.insert(item).values(code="never", n=3))
    async with db.session() as session:  # takes the write lock: none is left held
        await (await session.connection()).execute(sa.insert(item).values(code="after", n=4))
    async with db.engine.connect() as conn:
        codes = (await conn.execute(sa.text("SELECT code FROM item"))).scalars().all()
    assert codes == ["after"]


async def test_the_hot_reads_run_on_the_loop_and_see_every_commit(
    db: Database, thread_calls: list[str]
) -> None:
    """`Database.fetch` reads on the event loop's own connection (no call into a thread),
    each statement seeing what the pool's connections committed before it."""
    count = sa.select(sa.func.count().label("n")).select_from(sa.table("item"))
    before = len(thread_calls)
    [(first,)] = await db.fetch(count)
    assert thread_calls[before:] == []
    async with db.session() as session:
        await (await session.connection()).execute(
            sa.insert(sa.table("item", sa.column("code"), sa.column("n"))).values(code="new", n=1)
        )
    before = len(thread_calls)
    [(second,)] = await db.fetch(count)
    assert second == first + 1
    assert thread_calls[before:] == []


async def test_a_read_sqlite_finds_busy_waits_in_a_thread_not_on_the_loop(
    tmp_path: Path,
) -> None:
    """A writer holding the whole file (exclusive locking mode, a transaction open): the
    loop's connection never waits for it (busy timeout 0); the read goes to a pooled
    connection, which waits in its thread while the loop runs on, and answers once the
    writer lets go, with what it committed."""
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE item (n INTEGER)")
    holder.execute("INSERT INTO item VALUES (9)")
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(make_settings(url, tmp_path), url=url)
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    def release() -> None:
        holder.execute("COMMIT")
        holder.execute("PRAGMA locking_mode=NORMAL")
        holder.execute("SELECT 1")  # a statement after NORMAL gives the file's locks back
        holder.close()

    async def tick() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.02)

    ticking = asyncio.create_task(tick())
    loop.call_later(0.3, release)
    try:
        started = loop.time()
        [(n,)] = await db.fetch(sa.select(sa.column("n")).select_from(sa.table("item")))
        waited = loop.time() - started
    finally:
        ticking.cancel()
        await db.dispose()
    assert n == 9
    assert waited >= 0.25
    # The loop ran while the read waited: a tick every 20 ms, none missing for long.
    assert len(ticks) >= 10
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.15


def test_an_in_memory_database_has_no_loop_reader() -> None:
    """An in-memory database is one per connection: its reads stay on the pool's."""
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        engine = create_async_engine(url)
        assert loop_reader_for(engine.dialect, engine.url) is None
    engine = create_async_engine("sqlite+aiosqlite:///./var/x.db")
    assert loop_reader_for(engine.dialect, engine.url) is not None
