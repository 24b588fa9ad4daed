"""Engines, sessions and every dialect quirk Ruta depends on, behind one interface.

SQLite is the embedded default and PostgreSQL the production database. What differs between
them (pragmas, how a writing transaction begins, row locks, upserts) is decided here and
nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import logging
import random
import socket
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import sqlalchemy as sa
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from prometheus_client import Counter
from pydantic_core import PydanticUndefined
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql import Select
from sqlalchemy.util import await_
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.driven import (
    DrivenTransaction,
    driven,
    driven_transaction,
    fetch_driven,
    rows_in_transaction,
)
from service.core.errors import ServiceUnavailable
from service.core.http import direct_handler, query_parameters_of, refuse_unknown_query
from service.core.settings import Settings
from service.core.sqlite_driver import loop_reader_for, one_hop_dbapi

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Select)  # type: ignore[type-arg]
T = TypeVar("T")

_BEGIN_OPTION = "ruta_sqlite_begin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Session info key: the session's database refuses writes (see is_read_only).
READ_ONLY_INFO = "ruta_read_only"
# Session info key: each statement of the session is its own transaction (see in_transaction).
AUTOCOMMIT_INFO = "ruta_autocommit"
_NO_BEGIN = "NONE"

DB_RETRIES = Counter(
    "ruta_db_retries",
    "Units of work run again after a deadlock, a serialization failure or a dead connection.",
    ["reason"],
)
# SQLSTATEs (PostgreSQL): the transaction was rolled back and may simply run again.
_TRANSIENT_STATES = {"40P01": "deadlock", "40001": "serialization"}
# The server is shutting down, restarting or full: as good as away. (Class 08 too.)
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# Jittered backoff between attempts: a random pause up to base * 2**attempt, at most the cap.
_BACKOFF_BASE_SECONDS = 0.02
_BACKOFF_CAP_SECONDS = 0.5
RETRY_AFTER_SECONDS = 2
# How often a LISTEN connection is checked for a server that went away without closing it.
_LISTEN_CHECK_SECONDS = 10
# Whether the running task is inside a session (`Database.session`): `Database.fetch` refuses
# to take a second pooled connection then (see its text). Tasks started inside a session
# inherit it, as they inherit every context variable.
_IN_SESSION: contextvars.ContextVar[bool] = contextvars.ContextVar("ruta_in_session", default=False)


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached, refused the connection, dropped it, or no connection
    came free in time: answered 503 at once rather than a hang or a 500."""

    code = "database_unavailable"
    title = "Database unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The database cannot be reached just now; nothing was saved.")
        self.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)


class TransactionConflict(ServiceUnavailable):
    """The transaction lost a deadlock or a serialization conflict and could not run again."""

    code = "transaction_conflict"
    title = "Transaction conflict"

    def __init__(self) -> None:
        super().__init__(
            "The request collided with another one and was rolled back; nothing was saved."
        )
        self.headers["Retry-After"] = "1"


class Database:
    """An engine plus the two kinds of session Ruta uses: reading and writing.

    `url` opens another database than the settings' own (the statistics replica);
    `read_only` makes every transaction on it read-only, as a hot standby's are, so that
    code run there that would write fails here too instead of only in production.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        url: str | None = None,
        read_only: bool = False,
        session_info: dict[str, Any] | None = None,
        sqlite_foreign_keys: bool = True,
    ) -> None:
        self.settings = settings
        self.read_only = read_only
        self._writer_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._writer_locks = weakref.WeakKeyDictionary()
        address = make_url(url or settings.database_url)
        self.dialect = address.get_backend_name()
        # Bound parameters never reach exception messages or logs: they may be about a victim.
        # No `echo`: RUTA_SQL_ECHO sets the level of the "sqlalchemy.engine" logger
        # (core/logs.py), so that statements go through the one root handler, once each.
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.dialect == "sqlite":
            _ensure_sqlite_directory(address.database)
            # Rolled back on return only when a transaction is still open (`_harden_sqlite`).
            kwargs["pool_reset_on_return"] = None
            if address.get_driver_name() == "aiosqlite":
                # One hop into aiosqlite's thread per statement instead of four.
                kwargs["module"] = one_hop_dbapi()
        else:
            # No pre-ping: it would cost a round trip at every checkout, every request. A
            # connection the server dropped fails its statement instead; SQLAlchemy then
            # invalidates the whole pool, so the connections after it are new, and the unit
            # of work that met it is re-run where that is safe (`retrying`) or answers 503.
            kwargs |= {
                "pool_size": settings.db_pool_size,
                "max_overflow": 0,
                "pool_timeout": settings.db_pool_timeout_seconds,
                # asyncpg's own default waits 60 s for a host that does not answer.
                "connect_args": {"timeout": settings.db_connect_timeout_seconds},
            }
        self.engine: AsyncEngine = create_async_engine(address, **kwargs)
        # SQLite's hottest reads run on the event loop's thread (core/sqlite_driver.py).
        self._loop_reader = (
            loop_reader_for(self.engine.dialect, self.engine.url)
            if address.get_driver_name() == "aiosqlite"
            else None
        )
        if self.dialect == "sqlite":
            _harden_sqlite(
                self.engine,
                busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                foreign_keys=sqlite_foreign_keys,
            )
        if read_only:
            _refuse_writes(self.engine, self.dialect)
        # On SQLite a transaction that may write must take the write lock when it begins
        # (BEGIN IMMEDIATE): a deferred one that writes later fails with "database is locked"
        # instead of waiting. Readers keep deferred transactions and never block writers.
        writer = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        info = dict(session_info or {}) | {READ_ONLY_INFO: read_only}
        # What every session of this database carries (the audit keys): for work done
        # without a session (`driven_transaction`).
        self.session_info: Mapping[str, Any] = info
        self._reading = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info=info
        )
        self._writing = async_sessionmaker(
            writer, class_=AsyncSession, expire_on_commit=False, info=info
        )
        # A request that only reads runs its statements without BEGIN and COMMIT: two round
        # trips fewer. On PostgreSQL that changes nothing a request can see: in READ COMMITTED
        # every statement of a transaction takes its own snapshot anyway. On SQLite a deferred
        # transaction held one snapshot for all of them; without it each statement has its
        # own, as on PostgreSQL. A statement that would write there is refused
        # (`_refuse_writes_without_transaction`): nothing is ever half-written by a read.
        autocommit = self.engine.execution_options(
            **(
                {_BEGIN_OPTION: _NO_BEGIN}
                if self.dialect == "sqlite"
                else {"isolation_level": "AUTOCOMMIT"}
            )
        )
        self._autocommit_engine = autocommit
        self._autocommit = async_sessionmaker(
            autocommit,
            class_=AsyncSession,
            expire_on_commit=False,
            info=info | {AUTOCOMMIT_INFO: True},
        )
        _refuse_writes_without_transaction(self.engine)

    async def fetch(
        self, stmt: sa.Select[Any], params: Mapping[str, Any] | None = None
    ) -> Sequence[sa.Row[Any]]:
        """The rows of one SELECT, run outside any transaction and without a session, as a
        request that only reads runs its statements (`session(transaction=False)`): for the
        hottest reads. The driver sends it (core/driven.py: a quarter of a case read's CPU
        saved on PostgreSQL, two fifths on SQLite), on SQLite on the event loop's own
        connection (core/sqlite_driver.LoopReader: no hand-off to a thread); SQLAlchemy only
        where the statement cannot be sent that way (an expanding IN). Failures as in
        `session`: 503 when the database is away (a reading request runs again after a dead
        connection). Only for small reads by key: on SQLite the event loop waits for it, and
        every request of the worker with it (a case view: about 30 µs).

        It takes a pooled connection of its own for the statement: never call it while the
        same request holds a session's connection (a burst of such requests would hold the
        whole pool, each waiting for a second connection, until the pool's timeout):
        RuntimeError if the running task is inside a session."""
        if not isinstance(stmt, sa.Select):
            raise TypeError("Database.fetch runs a SELECT only: it has no transaction.")
        if _IN_SESSION.get():
            raise RuntimeError(
                "Database.fetch inside a session: read in the session instead (a second pooled"
                " connection per request starves the pool under load)."
            )
        params = params or {}
        try:
            if made := driven(self.engine.dialect, stmt):
                return await fetch_driven(self.engine, made, params, loop_reader=self._loop_reader)
            async with self._autocommit_engine.connect() as connection:
                rows: Sequence[sa.Row[Any]] = (await connection.execute(stmt, params)).all()
                return rows
        except Exception as exc:
            _raise_translated(exc)
            raise

    @contextlib.asynccontextmanager
    async def session(
        self, *, write: bool = True, transaction: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        `transaction=False` (reading only): no transaction, each statement sees the database
        as it is when it runs; for the requests that only read (`get_session`). A statement
        that would write fails there, and temporary tables are refused (see in_transaction).

        A database that is away or dropped the connection surfaces as DatabaseUnavailable,
        a lost deadlock or serialization conflict as TransactionConflict (both 503 problems,
        the original as their cause).
        """
        write = write and not self.read_only
        maker = self._writing if write else self._reading if transaction else self._autocommit
        outer = _IN_SESSION.set(True)
        try:
            async with self._writer_turn(write), maker() as session:
                try:
                    yield session
                except BaseException as exc:
                    with contextlib.suppress(Exception):
                        # A dead connection may refuse even the rollback; closing releases it.
                        await session.rollback()
                    _raise_translated(exc)
                    raise
                if maker is self._autocommit:
                    return  # nothing to commit: closing the session returns its connection
                try:
                    await session.commit()
                except Exception as exc:
                    _raise_translated(exc)
                    raise
        finally:
            _IN_SESSION.reset(outer)

    @contextlib.asynccontextmanager
    async def driven_transaction(self) -> AsyncIterator[DrivenTransaction]:
        """PostgreSQL: a transaction whose statements asyncpg sends itself (core/driven.py
        `DrivenTransaction`: SELECTs and INSERTs compiled once, none of SQLAlchemy's session
        or execution path around them), committed when the block ends, rolled back when it
        raises; failures as in `session` (503 when the database is away). For a unit of
        work that runs very often and is always the same few statements: the audit
        appender's batches. Not inside a session (one more pooled connection per request)."""
        if self.read_only:
            raise RuntimeError("a read-only database has no writing transaction")
        if _IN_SESSION.get():
            raise RuntimeError("Database.driven_transaction inside a session: write in it instead.")
        try:
            async with driven_transaction(self.engine) as transaction:
                yield transaction
        except Exception as exc:
            _raise_translated(exc)
            raise

    @contextlib.asynccontextmanager
    async def _writer_turn(self, write: bool) -> AsyncIterator[None]:
        """On SQLite, the writing transactions of this process take turns on an asyncio lock
        before their BEGIN IMMEDIATE. SQLite lets one writer in at a time anyway; without
        the queue the others wait in SQLite's busy handler, which polls with sleeps of up to
        100 ms, and the database lock sits free between them. Other processes still wait
        in the busy handler (RUTA_SQLITE_BUSY_TIMEOUT_MS). PostgreSQL: no turn."""
        if not write or self.dialect != "sqlite":
            yield
            return
        loop = asyncio.get_running_loop()
        lock = self._writer_locks.get(loop)
        if lock is None:  # one lock per event loop (the CLI and tests run several)
            lock = self._writer_locks[loop] = asyncio.Lock()
        async with lock:
            yield

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
        """Run `work` in a session of its own, again (up to `db_retries` times, with jitter)
        after a deadlock, a serialization failure or a connection found dead. For units of
        work that may run twice: the sweep's batches, the CLI's idempotent steps."""

        async def once() -> T:
            async with self.session(write=write) as session:
                return await work(session)

        return await retrying(once, retries=self.settings.db_retries, may_rerun=lambda _: True)

    async def listen(
        self,
        channel: str,
        *,
        heard: Callable[[], None],
        listening: Callable[[bool], None],
    ) -> None:
        """PostgreSQL: LISTEN on `channel`, over a connection of its own, for as long as the
        task that awaits this runs; after a lost connection, again once the server answers.
        `heard()` runs at every notification; `listening(True)` once the LISTEN is in
        place, `listening(False)` when the connection is lost or the task ends (what is
        announced meanwhile is never heard). The connection is checked every
        `_LISTEN_CHECK_SECONDS`: a server gone without closing it is noticed too.
        SQLite has no notifications: returns at once."""
        if self.dialect != "postgresql":
            return
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                connection = await asyncpg.connect(
                    dsn,
                    timeout=self.settings.db_connect_timeout_seconds,
                    # As pg_stat_activity names it.
                    server_settings={"application_name": f"ruta-listen-{channel}"},
                )
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot listen on %s: %s", channel, type(exc).__name__)
                await asyncio.sleep(RETRY_AFTER_SECONDS)
                continue
            try:
                await self._listen_on(connection, channel, heard=heard, listening=listening)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("stopped listening on %s: %s", channel, type(exc).__name__)
            finally:
                listening(False)
                connection.terminate()
            await asyncio.sleep(RETRY_AFTER_SECONDS)

    async def _listen_on(
        self,
        connection: asyncpg.Connection,
        channel: str,
        *,
        heard: Callable[[], None],
        listening: Callable[[bool], None],
    ) -> None:
        """LISTEN on one connection until it is lost (closed, or failing its check)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(channel, lambda *_notification: heard())
        listening(True)
        while not lost.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(lost.wait(), _LISTEN_CHECK_SECONDS)
                return
            await connection.fetchval("SELECT 1", timeout=self.settings.db_connect_timeout_seconds)

    async def dispose(self) -> None:
        if self._loop_reader is not None:
            self._loop_reader.close()
        await self.engine.dispose()


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")


def is_undefined_table(exc: BaseException) -> bool:
    """Whether `exc` says a table does not exist (PostgreSQL's undefined_table, SQLite's
    message), as on a database never migrated."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return _sqlstate(exc) == "42P01" or "no such table" in str(exc.orig)


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is away rather than that the request was wrong:
    connection refused or reset, a connect timeout, a dropped connection, a full pool."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        state = _sqlstate(exc)
        return exc.connection_invalidated or state.startswith("08") or state in _UNAVAILABLE_STATES
    # The driver's connect raises these unwrapped: refused or reset, its timeout, a host
    # name that does not resolve.
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)


def _raise_translated(exc: BaseException) -> None:
    """Raise the problem a database failure means to a client, if it means one."""
    if isinstance(exc, sa.exc.DBAPIError) and _sqlstate(exc) in _TRANSIENT_STATES:
        raise TransactionConflict() from exc
    if not isinstance(exc, ServiceUnavailable) and is_unavailable(exc):
        raise DatabaseUnavailable() from exc


def retry_reason(exc: BaseException) -> str | None:
    """Why a failed unit of work may simply run again ('deadlock', 'serialization',
    'disconnect': a pooled connection found dead, the pool then renews itself), or None."""
    cause = exc.__cause__
    if isinstance(exc, TransactionConflict):
        return _TRANSIENT_STATES.get(_sqlstate(cause) if cause else "")
    if isinstance(exc, DatabaseUnavailable) and isinstance(cause, sa.exc.DBAPIError):
        return "disconnect" if cause.connection_invalidated else None
    return None


async def retrying(
    unit: Callable[[], Awaitable[T]], *, retries: int, may_rerun: Callable[[str], bool]
) -> T:
    """Run `unit`, and again after a failure `retry_reason` names and `may_rerun` accepts, at
    most `retries` more times, each after a random pause (full jitter, so that the two sides
    of a deadlock do not meet again in step). Each retry is counted in ruta_db_retries_total."""
    attempt = 0
    while True:
        try:
            return await unit()
        except ServiceUnavailable as exc:
            reason = retry_reason(exc)
            if reason is None or attempt >= retries or not may_rerun(reason):
                raise
        DB_RETRIES.labels(reason=reason).inc()
        pause = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)
        await asyncio.sleep(random.uniform(0, pause))  # noqa: S311 (jitter, not a secret)
        attempt += 1


def _ensure_sqlite_directory(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _harden_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, foreign_keys: bool) -> None:
    """WAL, foreign keys and a busy timeout on every connection; explicit BEGIN modes."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so that its mode can be chosen.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching a new database to WAL may itself have to wait.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # Off only for migrations, which rebuild tables and then run foreign_key_check.
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # What is deleted is overwritten, not left in free pages: an erased person's data
        # key (and her identity records) must not survive in the file's free space.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        # A connection comes back to the pool after its session committed or rolled back:
        # the pool's own rollback then (its default) would be one more call into aiosqlite's
        # thread, at every request, for nothing. Only a transaction still open is rolled back.
        if (
            state.asyncio_safe
            and not state.terminate_only
            and dbapi_connection.driver_connection.in_transaction
        ):
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        if mode != _NO_BEGIN:
            connection.exec_driver_sql(f"BEGIN {mode}")


def _refuse_writes_without_transaction(engine: AsyncEngine) -> None:
    """A session without a transaction (`Database.session(transaction=False)`) only reads:
    an INSERT, UPDATE or DELETE there would commit alone, so it is refused before it runs."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _check(
        connection: sa.Connection,
        _cursor: Any,
        _statement: str,
        _parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> None:
        if context is None or not (context.isinsert or context.isupdate or context.isdelete):
            return
        options = connection.get_execution_options()
        if (
            options.get("isolation_level") == "AUTOCOMMIT"
            or options.get(_BEGIN_OPTION) == _NO_BEGIN
        ):
            raise RuntimeError(
                "A statement that writes ran in a session without a transaction; "
                "a route that writes on a safe method must be marked with `writes`."
            )


def _refuse_writes(engine: AsyncEngine, dialect: str) -> None:
    """Every transaction of the engine's connections read-only, as on a hot standby."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if dialect == "sqlite":
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()


def is_read_only(session: AsyncSession) -> bool:
    """Whether the session's database refuses writes (a replica): nothing may be created in
    it, not even a temporary table."""
    return bool(session.info.get(READ_ONLY_INFO, False))


def in_transaction(session: AsyncSession) -> bool:
    """Whether the session's statements run in one transaction (not `transaction=False`):
    what a temporary table, a lock or SET LOCAL needs to last beyond its own statement."""
    return not session.info.get(AUTOCOMMIT_INFO, False)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel table model (for bulk statements)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


# Inserts without the ORM's unit of work, for the hot writes (the intake). A flush costs a
# unit-of-work cycle (ordering, bookkeeping, a subtransaction) around its INSERT, and building
# a SQLModel table instance costs about as much as the INSERT's own execution (profiled:
# an intake spent a quarter of its time in six flushes and nine instances). The models stay
# the one definition of every row: `row_of` applies their defaults, the statements are their
# tables'.


@functools.cache
def _defaults_of(
    model: type[SQLModel],
) -> tuple[frozenset[str], tuple[tuple[str, Any, Callable[..., Any] | None], ...]]:
    """The names of the model's columns, and each column's name, model default and default
    factory."""
    fields = model.model_fields
    columns = tuple(
        (column.key, fields[column.key].default, fields[column.key].default_factory)
        for column in table_of(model).columns
    )
    return frozenset(name for name, _default, _factory in columns), columns


def row_of(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A row of the model's table as the model would build it: `values`, and the model's
    defaults for the columns not given (its default factories called: ids, times). A column
    without a default must be given (KeyError otherwise, naming it)."""
    names, columns = _defaults_of(model)
    unknown = values.keys() - names
    if unknown:
        raise KeyError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    row: dict[str, Any] = {}
    for name, default, factory in columns:
        if name in values:
            row[name] = values[name]
        elif factory is not None:
            row[name] = factory()
        elif default is PydanticUndefined:
            raise KeyError(f"{model.__name__}.{name} has no default and was not given")
        else:
            row[name] = default
    return row


@dataclass(frozen=True)
class Rows:
    """Rows (`row_of`: every column) of one model's table, for `insert_rows`.
    `ignoring_conflicts_on`: unique columns on which a colliding row is skipped."""

    model: type[SQLModel]
    rows: Sequence[dict[str, Any]]
    ignoring_conflicts_on: tuple[str, ...] = ()


async def insert_rows(
    session: AsyncSession, *parts: Rows, returning: sa.Column[Any] | None = None
) -> list[Any]:
    """INSERT the rows of one or several tables, not through the ORM (no flush, no instance),
    with statements built once per shape; `returning`: that column of the last part (one row),
    if it was inserted. Pending ORM changes are not flushed first, so what the rows refer
    to must be in the database already, or in an earlier part.

    PostgreSQL: all the parts in one statement, one round trip (each part but the last a
    data-modifying WITH; the foreign keys are checked at the end of the statement, so the
    parts may refer to each other). SQLite, which has no INSERT in WITH: one statement per
    part, in the order given (parents first); each is a call into the same process."""
    parts = tuple(part for part in parts if part.rows)
    if not parts:
        return []
    dialect = dialect_of(session)
    if returning is not None and len(parts[-1].rows) != 1:
        raise ValueError("`returning` is read from the last part, which must be one row")
    if dialect == "postgresql":
        if sum(len(part.rows) for part in parts) > 1:
            shape = tuple((table_of(p.model), len(p.rows), p.ignoring_conflicts_on) for p in parts)
            values = {
                f"p{i}_{j}_{name}": value
                for i, part in enumerate(parts)
                for j, row in enumerate(part.rows)
                for name, value in row.items()
            }
            stmt = _inserts_in_one(shape, returning)
        else:
            [part] = parts
            values = part.rows[0]
            stmt = _insert_statement(
                dialect, table_of(part.model), part.ignoring_conflicts_on, returning
            )
        rows = await session_rows(session, stmt, values)
        return [] if returning is None else [row[0] for row in rows]
    connection = await session.connection()
    found: list[Any] = []
    for position, part in enumerate(parts):
        last = returning if position == len(parts) - 1 else None
        stmt = _insert_statement(dialect, table_of(part.model), part.ignoring_conflicts_on, last)
        result = await connection.execute(stmt, list(part.rows))
        if last is not None:
            found = list(result.scalars().all())
    return found


@functools.cache
def _insert_statement(
    dialect: str, table: sa.Table, on: tuple[str, ...], returning: sa.Column[Any] | None
) -> sa.Insert:
    """One table's INSERT, its rows given as parameters (several: executemany)."""
    stmt: sa.Insert
    if on:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).on_conflict_do_nothing(index_elements=list(on))
    else:
        stmt = table.insert()
    return stmt if returning is None else stmt.returning(returning)


# Bounded: the shapes vary with the number of rows per table (forms of exploitation, legs
# of a route), which a client chooses within the schema's limits.
@functools.lru_cache(maxsize=256)
def _inserts_in_one(
    shape: tuple[tuple[sa.Table, int, tuple[str, ...]], ...], returning: sa.Column[Any] | None
) -> sa.Insert:
    """PostgreSQL: the INSERTs of `shape` (table, row count, conflict columns) in one
    statement, the value of column `c` of row `j` of part `i` bound as `p{i}_{j}_{c}`. One
    single-row INSERT per row: SQLAlchemy caches the compiled form of a VALUES clause of one
    row, but compiles one of several rows again at every execution (no cache key)."""
    statements = []
    for i, (table, count, on) in enumerate(shape):
        for j in range(count):
            row = {c.key: sa.bindparam(f"p{i}_{j}_{c.key}", type_=c.type) for c in table.columns}
            stmt = postgresql.insert(table).values(row)
            if on:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(on))
            statements.append(stmt)
    *earlier, last = statements
    final: sa.Insert = last if returning is None else last.returning(returning)
    return final.add_cte(*(stmt.cte(f"insert_{i}") for i, stmt in enumerate(earlier)))


def instance_row(instance: SQLModel) -> Rows:
    """The row of a new instance built by its model (its defaults applied), for
    `insert_rows`; then `persistent`."""
    model = type(instance)
    row = {column.key: getattr(instance, column.key) for column in table_of(model).columns}
    return Rows(model, [row])


def persistent(session: AsyncSession, instance: SQLModel) -> None:
    """Make a new instance whose row was inserted (`instance_row`) persistent in the session
    as if it had been loaded, without a flush: the request goes on using it, and
    `session.get` finds it without a statement."""
    make_transient_to_detached(instance)
    session.add(instance)


# Separators of the values `aggregate_strings` joins in one read (ASCII's record and unit
# separators: no code, date or name Ruta stores contains them).
RECORD, UNIT = "\x1e", "\x1f"


def joined_records(value: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """`value` of every row aggregated into one string, RECORD between them (read back with
    `split_aggregate`). The separator is written into the statement: given as a value,
    SQLAlchemy would render it into the SQL text again at every execution (a "literal
    execute" parameter), instead of once for its compiled cache."""
    # Typed as a str, the separator is coerced like any argument: an SQL literal is taken.
    return sa.func.aggregate_strings(value, _RECORD_IN_SQL)  # type: ignore[arg-type]


_RECORD_IN_SQL = sa.literal_column(f"'{RECORD}'", sa.String())


def one_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """`column IN (values)` for a fixed set of values (statuses, kinds): each bound as a
    parameter of its own. A list given to `in_` is an "expanding" parameter, which
    SQLAlchemy renders into the SQL text again at every execution."""
    return column.in_([sa.literal(value, column.type) for value in values])


def split_aggregate(value: str | None) -> list[list[str]]:
    """The records, each a list of its fields, of a string that `sa.func.aggregate_strings`
    joined with RECORD from fields joined with UNIT (None: no records)."""
    return [record.split(UNIT) for record in value.split(RECORD)] if value else []


def dialect_of(session: AsyncSession) -> str:
    """The name of the session's database dialect ('sqlite' or 'postgresql')."""
    return session.get_bind().dialect.name


def for_update(stmt: S, session: AsyncSession, *, skip_locked: bool = False) -> S:
    """Lock the selected rows until the transaction ends, and read them as they are now.

    PostgreSQL takes row locks. SQLite has none, but every writing transaction already holds
    the database's single write lock from its BEGIN IMMEDIATE, which serializes the same way.
    `populate_existing` matters: an object the session loaded before the lock would otherwise
    keep its stale attributes, and a counter incremented from them loses updates.
    """
    stmt = stmt.execution_options(populate_existing=True)
    if dialect_of(session) == "postgresql":
        # FOR NO KEY UPDATE: Ruta never changes a key, and it lets other transactions keep
        # inserting rows that reference the locked one (their FOR KEY SHARE does not wait).
        return stmt.with_for_update(skip_locked=skip_locked, key_share=True)
    return stmt


def lock_any_of(
    conn: sa.Connection, table: sa.Table, *, key: sa.Column[Any], pick: Callable[[], Any]
) -> sa.Row[Any]:
    """Lock one row of a small pool of interchangeable rows (the audit chain heads) and read
    it as it is now. PostgreSQL: any row no other transaction holds (SKIP LOCKED), or, when
    all are busy, wait for the row `pick()` names. SQLite: the writing transaction already
    holds the database's write lock, so the row `pick()` names will do. The statements are
    built once (`_any_free_row`, `_named_row`): this runs in every writing transaction."""
    if conn.dialect.name == "postgresql":
        free = connection_rows(conn, _any_free_row(table), {})
        if free:
            return free[0]
        [row] = connection_rows(conn, _named_row(key, lock=True), {"pick": pick()})
        return row
    [row] = connection_rows(conn, _named_row(key, lock=False), {"pick": pick()})
    return row


async def lock_any_of_driven(
    transaction: DrivenTransaction,
    table: sa.Table,
    *,
    key: sa.Column[Any],
    pick: Callable[[], Any],
) -> sa.Row[Any]:
    """`lock_any_of` in a `DrivenTransaction` (PostgreSQL): the same two statements."""
    free = await transaction.fetch(_any_free_row(table), {})
    if free:
        return free[0]
    [row] = await transaction.fetch(_named_row(key, lock=True), {"pick": pick()})
    return row


@functools.cache
def _any_free_row(table: sa.Table) -> Select[Any]:
    return sa.select(table).order_by(sa.func.random()).limit(1).with_for_update(skip_locked=True)


@functools.cache
def _named_row(key: sa.Column[Any], *, lock: bool) -> Select[Any]:
    stmt = sa.select(key.table).where(key == sa.bindparam("pick", type_=key.type))
    return stmt.with_for_update() if lock else stmt


async def serialize_on(session: AsyncSession, name: str) -> None:
    """Hold a lock on `name` until the transaction ends, so that the transactions naming it
    run one after another (for limits counted over rows that no single row stands for).

    PostgreSQL: a transaction-level advisory lock on a 64-bit digest of the name. SQLite:
    the writing transaction's BEGIN IMMEDIATE already serializes every writer.
    """
    if dialect_of(session) == "postgresql":
        digest = hashlib.sha256(name.encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        connection = await session.connection()
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def partial_unique_index(name: str, *columns: str, where: str) -> sa.Index:
    """A unique index over the rows that satisfy `where` (the same SQL on both databases)."""
    condition = sa.text(where)
    return sa.Index(name, *columns, unique=True, postgresql_where=condition, sqlite_where=condition)


async def insert_ignoring_conflicts(
    session: AsyncSession,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    on: Sequence[str],
    returning: sa.Column[Any] | None = None,
) -> list[Any]:
    """Insert rows, silently skipping those that collide on the unique columns `on`; with
    `returning`, that column of the rows actually inserted (in the same statement). The rows
    must have the same keys. The statement is built once (rows as parameters)."""
    if not rows:
        return []
    stmt = _insert_statement(dialect_of(session), table, tuple(on), returning)
    result = await (await session.connection()).execute(stmt, list(rows))
    return [] if returning is None else list(result.scalars().all())


async def wait_for_locks_at_most(session: AsyncSession, seconds: float | None) -> None:
    """Bound how long the transaction's next statements wait for a lock (None: the default
    again). PostgreSQL only: SQLite writers already hold the one write lock from BEGIN."""
    if dialect_of(session) != "postgresql":
        return
    value = "DEFAULT" if seconds is None else str(max(1, int(seconds * 1000)))
    connection = await session.connection()
    await connection.execute(sa.text(f"SET LOCAL lock_timeout TO {value}"))


def is_lock_timeout(exc: sa.exc.DBAPIError) -> bool:
    """Whether a statement failed because it waited for a lock past `wait_for_locks_at_most`."""
    return getattr(exc.orig, "sqlstate", None) == "55P03"


def writes(endpoint: Any) -> Any:
    """Mark a GET endpoint that writes (an audited read) so it gets a writing transaction."""
    endpoint.__ruta_writes__ = True
    return endpoint


# FastAPI keeps the exit stack of function-scoped dependencies in the request scope and
# closes it after the handler returns, before the response is sent (RetryingRoute gives each
# attempt a stack of its own there).
_FUNCTION_STACK = "fastapi_function_astack"
# The session of the request's attempt, with the stack it closes with: one per attempt,
# whoever asks for it first (a dependency, or the principal's read: see opens_session).
_SESSION = "ruta.session"


async def get_session(request: Request) -> AsyncSession:
    """The request's one transaction, committed before the response is sent. A request on a
    safe method whose endpoint is not marked `writes` only reads: it runs without a
    transaction (no BEGIN, no COMMIT; see Database.session).

    A coroutine that enters the session into the request's function-scoped exit stack, not a
    generator dependency: FastAPI wraps every generator dependency in a context manager of
    its own, an exit stack entry and a shielded cancel scope, about a tenth of what an
    authenticated request that reads nothing costs (profiled). The session closes in the same
    place (see _FUNCTION_STACK) and rolls back if the request fails."""
    stack: contextlib.AsyncExitStack = request.scope[_FUNCTION_STACK]
    opened = request.scope.get(_SESSION)
    if opened is not None and opened[0] is stack:
        same: AsyncSession = opened[1]
        return same  # asked for again in the same attempt (see get_principal)
    db: Database = request.app.state.db
    endpoint = request.scope.get("endpoint")
    write = request.method not in SAFE_METHODS or getattr(endpoint, "__ruta_writes__", False)
    session = await stack.enter_async_context(db.session(write=write, transaction=write))
    request.scope[_SESSION] = (stack, session)
    return session


def opens_session(route: Any) -> bool:
    """Whether the route's dependencies include the request's session (`get_session`): its
    principal is then read in that session, one pooled connection for the whole request,
    never two one after the other (each a turn in the pool's queue when it is saturated).
    A route without one (`/v1/me`, the case read) reads it with `Database.fetch`. Found once
    per route from its dependency tree; without a tree, a session (the safe choice)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return True
    known: bool | None = getattr(route, "_ruta_opens_session", None)
    if known is None:
        pending, known = [dependant], False
        while pending and not known:
            current = pending.pop()
            known = current.call is get_session
            pending.extend(current.dependencies)
        setattr(route, "_ruta_opens_session", known)  # noqa: B010 (not a declared field)
    return known


async def read_rows(
    source: Database | AsyncSession, stmt: sa.Select[Any], params: Mapping[str, Any]
) -> Sequence[sa.Row[Any]]:
    """The rows of a SELECT: in the session given, or with `Database.fetch` (no session)."""
    if isinstance(source, Database):
        return await source.fetch(stmt, params)
    return await session_rows(source, stmt, params)


async def session_rows(
    session: AsyncSession, stmt: sa.Select[Any] | sa.Insert, params: Mapping[str, Any]
) -> Sequence[sa.Row[Any]]:
    """The rows of one statement (an INSERT: those it RETURNs) in the session's transaction,
    its pending ORM changes not flushed first: sent by the driver on PostgreSQL
    (core/driven.rows_in_transaction: SQLAlchemy's execution path cost ~53 µs of CPU more per
    statement), through SQLAlchemy otherwise."""
    connection = await session.connection()
    rows = await rows_in_transaction(connection.sync_connection, stmt, params)  # type: ignore[arg-type]
    if rows is None:
        rows = (await connection.execute(stmt, params)).all()
    return rows


def connection_rows(
    connection: sa.Connection,
    stmt: sa.Select[Any] | sa.Insert,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> Sequence[sa.Row[Any]]:
    """`session_rows` on a session's own `Connection`, in SQLAlchemy's greenlet (a session's
    events: the audit events appended at COMMIT); several sets of `params`: none returned."""
    rows = await_(rows_in_transaction(connection, stmt, params))
    if rows is None:
        result = connection.execute(stmt, params)
        rows = [] if not isinstance(params, Mapping) else result.all()
    return rows


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def may_rerun_request(request: Request, reason: str) -> bool:
    """Whether the request's unit of work may run again after `reason` (see retrying).

    A deadlock or serialization failure rolled the whole transaction back, so a run again
    does everything once; it is allowed where HTTP lets a client repeat the request itself:
    GET/HEAD (an audited read's event was rolled back with it), PUT and DELETE, and a POST
    carrying an Idempotency-Key. A dead connection may have taken a COMMIT's answer with it
    (the work done, the client not told): only a read-only request, or a keyed POST (a
    second run finds the key answered and replays), may run again after it.
    """
    keyed = request.method == "POST" and "idempotency-key" in request.headers
    endpoint = request.scope.get("endpoint")
    reads = request.method in SAFE_METHODS and not getattr(endpoint, "__ruta_writes__", False)
    if reason == "disconnect":
        return reads or keyed
    return request.method in SAFE_METHODS | {"PUT", "DELETE"} or keyed


async def run_request_retrying(
    request: Request, handler: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Run a route handler with its session dependency closed (committed) inside each
    attempt, so that a deadlock, a serialization failure or a dead connection, at any
    statement or at COMMIT, re-runs the whole request where `may_rerun_request` allows."""
    settings: Settings = request.app.state.settings

    async def attempt() -> Response:
        outer = request.scope.get(_FUNCTION_STACK)
        try:
            async with contextlib.AsyncExitStack() as stack:
                request.scope[_FUNCTION_STACK] = stack
                return await handler(request)
        finally:
            request.scope[_FUNCTION_STACK] = outer

    return await retrying(
        attempt,
        retries=settings.db_retries,
        may_rerun=lambda reason: may_rerun_request(request, reason),
    )


async def get_stats_session(request: Request, session: SessionDep) -> AsyncIterator[AsyncSession]:
    """The session statistics are counted in: a read-only transaction on the statistics
    database (RUTA_STATS_DATABASE_URL, a replica) when one is set, else the request's own."""
    stats_db: Database | None = getattr(request.app.state, "stats_db", None)
    if stats_db is None:
        yield session
        return
    async with stats_db.session(write=False) as reading:
        yield reading


StatsSessionDep = Annotated[AsyncSession, Depends(get_stats_session, scope="function")]


class hours_between(sa.sql.functions.GenericFunction[float]):  # noqa: N801 (SQL function)
    """Hours (fractional) from the first datetime to the second, on either database."""

    type = sa.Float()
    inherit_cache = True
    name = "ruta_hours_between"


@compiles(hours_between, "postgresql")
def _hours_between_postgresql(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


class RetryingRoute(APIRoute):
    """A route whose unit of work runs again after a deadlock, a serialization failure or a
    dead connection, where `may_rerun_request` allows (see run_request_retrying), and which
    refuses a query parameter it does not take (core/http.py)."""

    def unit_of_work(
        self, handler: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """What one attempt runs: the handler, or a subclass's wrapping of it."""
        return handler

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        unit = self.unit_of_work(direct_handler(self, super().get_route_handler()))
        known = query_parameters_of(self.dependant)

        async def handle(request: Request) -> Response:
            if request.scope["query_string"]:
                refuse_unknown_query(request, known)
            return await run_request_retrying(request, unit)

        return handle
