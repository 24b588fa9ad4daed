"""SQLite through aiosqlite in one thread hop per statement.

aiosqlite runs each SQLite connection in a thread of its own and hands it every call through a
queue: SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute,
fetch the rows, close the cursor), each a round trip between the event loop and the thread
(a queue put, a wake-up, the GIL handed over and back, a future resolved through
`call_soon_threadsafe`). Measured here, a case view that SQLite itself answers in about 30 µs
costs about 430 µs that way. This adapter does the four in one call, in the connection's
thread: the same SQLite work, one hop.

What it relies on: aiosqlite's `Connection._execute(fn, *args)` (run `fn` in the connection's
thread; what aiosqlite's own cursors use) and `Connection._conn` (the sqlite3 connection,
also used by SQLAlchemy's adapter), and the layout of SQLAlchemy's
`AsyncAdapt_aiosqlite_cursor` (`_rows`, `_soft_closed_memoized`). Server-side cursors
(`yield_per`, streaming) keep SQLAlchemy's own adapter. `tests/core/test_sqlite_driver.py`
checks the hop count and the behaviour a DBAPI cursor owes: rows, description, rowcount,
lastrowid, errors.

The hottest reads (`Database.fetch`) make no hop at all: `LoopReader` runs them on the event
loop's thread, on a read-only connection of the worker's own that never waits.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, collections.deque[Any], int, int | None]


def _execute(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """In the connection's thread: run the statement, read all its rows, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = collections.deque(cursor.fetchall() if description else ())
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor over aiosqlite that runs each statement, with its rows, in one call into
    the connection's thread. Results are kept here: nothing is left open in the thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No cursor is opened in the thread until a statement runs (the base opens one here).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # the rows are all fetched at once

    async def _async_soft_close(self) -> None:
        pass  # nothing open in the thread; the description stays readable

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _execute, connection._conn, operation, parameters, many
            )
        self._description, self._rows, self._rowcount, self._lastrowid = outcome


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter with `OneHopCursor` as its cursor, and no hop
    at all for a COMMIT or ROLLBACK outside a transaction."""

    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]  # a subclass of the base's class

    def _in_transaction(self) -> bool:
        """Whether SQLite has a transaction open on the connection (False once it closed).
        Read from the event loop's thread, as the pool's reset reads it (core/db.py): no
        statement of this connection runs meanwhile (its statements hold `_execute_mutex`
        and are awaited before the connection commits, rolls back or goes back)."""
        connection: sqlite3.Connection | None = self._connection._connection
        return connection is not None and connection.in_transaction

    def rollback(self) -> None:
        # SQLAlchemy rolls back the transaction it began on every connection it closes, even
        # one that ran without BEGIN (a request that only reads, `Database.fetch`): sqlite3's
        # rollback does nothing outside a transaction, so the call into the thread for it is
        # skipped (one hop fewer per reading request; tests/core/test_sqlite_driver.py).
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():  # sqlite3's commit does nothing outside a transaction
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=)`):
    its connections are `OneHopConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)


class LoopReader:
    """A SQLite connection of the worker's own for its hottest reads (`Database.fetch`: the
    case read, the audited read, the caller's principal), run on the event loop's thread.

    A statement handed to aiosqlite's thread costs the worker more than SQLite's own work:
    the queue, a futex wake-up, the GIL handed over and back, the loop's self-pipe. Under load
    a SQLite case read cost the worker 1,085 µs of CPU, 342 µs of it in the kernel, where
    SQLite answers the statement in about 30 µs (bench/RESULTS.md, eleventh and twelfth
    passes). Here the statement runs where the request runs. It never waits: the connection's
    busy timeout is 0, and a read SQLite refuses as busy (a writer holding the whole file:
    an exclusive locking mode, a checkpoint that truncates the log) returns None, for the
    caller to read through the pool, whose connections wait in their threads. In WAL mode a
    reader is otherwise never blocked by a writer, and each statement, outside any
    transaction, sees what is committed when it runs.

    Opened at its first read, with the engine's own connection arguments, read-only
    (`query_only`); a file database only (an in-memory database is one per connection)."""

    def __init__(self, database: str, options: dict[str, Any]) -> None:
        self._database = database
        self._options = options
        self._connection: sqlite3.Connection | None = None

    def rows(self, sql: str, arguments: Any) -> list[Any] | None:
        """The statement's rows, or None when SQLite is busy. The driver's errors otherwise
        (the connection is closed when one says it is gone: the next read opens another)."""
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = self._open()
            cursor = connection.execute(sql, arguments)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise
        except sqlite3.ProgrammingError:  # closed under it ("Cannot operate on a closed ...")
            self.close()
            raise

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _open(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(
            self._database, **{**self._options, "check_same_thread": False}, isolation_level=None
        )
        try:
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA query_only=ON")
        except BaseException:
            connection.close()
            raise
        return connection


def _busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included (their low byte)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def loop_reader_for(dialect: Any, url: Any) -> LoopReader | None:
    """A LoopReader for the engine's database (`dialect.create_connect_args(url)`, as the
    pool's connections are opened), or None for an in-memory one."""
    args, options = dialect.create_connect_args(url)
    database = str(args[0]) if args else ":memory:"
    if database == ":memory:" or "mode=memory" in database:
        return None
    return LoopReader(database, dict(options))
