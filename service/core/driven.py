"""A reading statement sent by the driver itself, on a connection of the engine's pool:
SQLAlchemy compiles it once, the driver runs it (asyncpg; on SQLite, sqlite3 on the event
loop's own connection, `sqlite_driver.LoopReader`, or, when SQLite is busy for it, in a
pooled connection's aiosqlite thread, in one call).

SQLAlchemy's execution path costs about 150 µs of the worker's CPU per statement beyond
asyncpg's own (measured on this machine: a one-row SELECT through an AsyncConnection took
200-240 µs, the same statement sent by asyncpg on a connection checked out of the same pool
60-75 µs): the greenlet hops of the async adaptation, the execution context, the events,
the result's metadata. For the hottest reads (a case read is one statement) that is a
quarter of the request; on SQLite, whose statements cost less, SQLAlchemy's path was about
two fifths of a case read (instructions, bench/RESULTS.md). Here the statement keeps
everything SQLAlchemy gives it once: its SQL (the dialect's parameters, PostgreSQL's `$n` or
SQLite's `?`, with the casts the dialect renders), the order of its
parameters, the processors of its bound values and of its result columns, so that a row
read here holds the same values as one read through SQLAlchemy (tests/core/test_driven.py
compares them). Rows are SQLAlchemy `Row`s: callers read them the same way.

What SQLAlchemy would otherwise do around a statement is kept too: the engine's
`before_cursor_execute` listeners are told of it (the statement counter of the tests), the
`sqlalchemy.engine` logger logs it when SQL echo is on, and a failure is wrapped as
SQLAlchemy wraps it (`DBAPIError`; at connect, as its Connection does), so that the
session's translation applies: a connection found dead is invalidated with every pooled
connection of its generation (as SQLAlchemy does on a disconnect) and answers 503, which a
reading request runs again (`retrying`).

Only for a SELECT run outside a transaction (a request that only reads; `Database.fetch`
refuses anything else): each statement sees the database as it is when it runs, as in
`Database.session(transaction=False)`.

It leans on a few of SQLAlchemy's own attributes (the compiler's `_result_columns` and
`_bind_processors`, a type's `_cached_result_processor`, the result metadata's
`_key_to_index`, the pool's `_invalidate`), and on SQLite on what core/sqlite_driver.py
leans on (aiosqlite's `_execute` and `_conn`, the adapter's `_execute_mutex`): an upgrade
that changes them fails tests/core/test_driven.py, which compares rows with SQLAlchemy's
own on both databases, and cuts connections under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiosqlite
import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_, greenlet_spawn

from service.core.sqlite_driver import LoopReader

# The logger SQLAlchemy's engine logs its statements to (RUTA_SQL_ECHO sets its level).
_SQL_LOG = logging.getLogger("sqlalchemy.engine.Engine")
# SQLSTATE classes of a connection that is gone or going: 08 (connection exception), 57P
# (the server shutting down or restarting).
_LOST_STATES = ("08", "57P")

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class Driven:
    """A SELECT compiled once for the driver."""

    sql: str
    parameters: tuple[str, ...]  # the names of $1, $2, ... in order
    compiled: Any  # sqlalchemy.sql.compiler.SQLCompiler
    bind_processors: Mapping[str, Processor]
    types: tuple[sa.types.TypeEngine[Any], ...]  # of the result columns
    metadata: SimpleResultMetaData
    # The values the statement carries (literals it was built with) and the names a call must
    # give, for `arguments` to bind them without SQLAlchemy's construct_params (7 µs of a
    # 9 µs call); None when the statement has a parameter that path does not know (a value
    # computed at execution, an escaped name): construct_params then binds every call.
    literal: Mapping[str, Any] | None = None
    required: frozenset[str] = frozenset()
    # Known once the server has described the result (`learn`): some processors depend on
    # the type the server sends (a NUMERIC, say), as SQLAlchemy's read from the cursor.
    result_processors: tuple[Processor | None, ...] | None = None

    def learn(self, dialect: Dialect, oids: Sequence[int | None]) -> None:
        """The result processors, from the type of each column as the server sends it (None
        where it sends none: SQLite)."""
        self.result_processors = tuple(
            kind._cached_result_processor(dialect, oid)
            for kind, oid in zip(self.types, oids, strict=True)
        )

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments of a call: the values given, those the statement carries
        (literal values it was built with), each through its type's bind processor."""
        if self.literal is not None and self.required <= params.keys():
            values = {**self.literal, **params}
        else:  # also where a value is missing: SQLAlchemy's own error
            values = self.compiled.construct_params(params, _check=True)
        processors = self.bind_processors
        return [
            values[name] if (process := processors.get(name)) is None else process(values[name])
            for name in self.parameters
        ]

    def rows(self, records: Sequence[Any]) -> Sequence[sa.Row[Any]]:
        """The driver's records as SQLAlchemy rows, each value through its column's result
        processor (JSON decoded, for one), made as SQLAlchemy's results make theirs: the row
        applies the processors itself (a case read's row: 21k instructions, 57k through a
        result object)."""
        processors = self.result_processors
        if processors is None:
            raise RuntimeError("the result's types are not known yet: learn() first")
        metadata, keys = self.metadata, self.metadata._key_to_index
        processing: Any = processors  # the processors of the result types, as SQLAlchemy types them
        return [sa.Row(metadata, processing, keys, record) for record in records]


# Statements are built once (functools.cache) and live as long as the process: the same
# holds of their compiled forms here. Keyed by identity (a Select has no value equality),
# the statement kept beside its form so that its id is never another's. Bounded: a caller
# that built its statement anew at every call would pay a compilation each time, never
# the worker's memory.
_DRIVEN: dict[tuple[int, str], tuple[sa.Select[Any] | sa.Insert, Driven]] = {}
_DRIVEN_SIZE = 512


def driven(dialect: Dialect, stmt: sa.Select[Any] | sa.Insert) -> Driven | None:
    """`stmt` (a SELECT; an INSERT for `DrivenTransaction.insert_many`) compiled for the
    driver, or None when it cannot be sent that way (parameters SQLAlchemy renders into the
    text at each execution: an expanding IN)."""
    key = (id(stmt), dialect.name)  # compiled for one dialect: a process may hold two
    found = _DRIVEN.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    compiled = stmt.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    columns = compiled._result_columns
    binds = list(compiled.binds.values())
    plain = not compiled.escaped_bind_names and not any(b.callable for b in binds)
    made = Driven(
        sql=str(compiled),
        parameters=tuple(compiled.positiontup or ()),
        compiled=compiled,
        bind_processors=cast(Mapping[str, Processor], dict(compiled._bind_processors)),
        types=tuple(column.type for column in columns),
        metadata=SimpleResultMetaData([column.keyname for column in columns]),
        literal=dict(compiled.construct_params(_check=False)) if plain else None,
        required=frozenset(compiled.bind_names[b] for b in binds if b.required),
    )
    if len(_DRIVEN) >= _DRIVEN_SIZE:
        del _DRIVEN[next(iter(_DRIVEN))]  # the oldest compiled
    _DRIVEN[key] = (stmt, made)
    return made


async def fetch_driven(
    engine: AsyncEngine,
    made: Driven,
    params: Mapping[str, Any],
    *,
    loop_reader: LoopReader | None = None,
) -> Sequence[sa.Row[Any]]:
    """The rows of a statement compiled by `driven`, sent by the driver outside any
    transaction: asyncpg on a pooled connection of `engine` on PostgreSQL; on SQLite the
    `loop_reader`'s connection on the event loop's thread, or (none given, or SQLite busy
    for it) a pooled connection's sqlite3 in its aiosqlite thread (one hop). Failures come
    back as SQLAlchemy's DBAPIError (see the module's text)."""
    sync_engine = engine.sync_engine
    arguments = made.arguments(params)
    _announce(sync_engine, made.sql, arguments)
    pool = sync_engine.pool
    dialect = engine.dialect
    if loop_reader is not None:
        try:
            found = loop_reader.rows(made.sql, arguments)
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(dialect, made.sql, exc) from exc
        if found is not None:
            if made.result_processors is None:
                made.learn(dialect, [None] * len(made.types))
            return made.rows(found)
    records_of = _asyncpg_records if dialect.name == "postgresql" else _sqlite_records

    def checked_out() -> Sequence[Any]:
        # The pool's checkout, the statement and the check-in in ONE greenlet: the pool's
        # code may have to wait (a new connection, a full pool), so it runs in one; a
        # greenlet for each costs ~8 µs more per read.
        try:
            fairy = pool.connect()
        except dialect.loaded_dbapi.Error as exc:
            # A refusal by the server (starting up, too many connections) wrapped as
            # SQLAlchemy's Connection wraps it, so that it is translated the same way (503).
            raise _wrapped(dialect, None, exc) from exc
        try:
            return await_(records_of(pool, fairy, made, dialect, arguments))
        finally:
            fairy.close()

    return made.rows(await greenlet_spawn(checked_out))


class DrivenTransaction:
    """A transaction on PostgreSQL whose statements asyncpg sends itself, on a connection of
    the engine's pool (`driven_transaction`): for a unit of work that runs often and is
    always the same few statements (the audit appender's batches). Its SELECTs and INSERTs
    are compiled once (`driven`) and bound as SQLAlchemy binds them; the engine's
    `before_cursor_execute` listeners and SQL echo see each; a failure is SQLAlchemy's
    DBAPIError, the connection invalidated when it is gone."""

    def __init__(self, engine: AsyncEngine, fairy: Any) -> None:
        self._engine = engine
        self._fairy = fairy
        self._connection: asyncpg.Connection = fairy.driver_connection

    async def fetch(self, stmt: sa.Select[Any], params: Mapping[str, Any]) -> Sequence[sa.Row[Any]]:
        """The rows of a SELECT (FOR UPDATE, say) in this transaction."""
        made = self._made(stmt)
        arguments = made.arguments(params)
        _announce(self._engine.sync_engine, made.sql, arguments)
        pool = self._engine.sync_engine.pool
        records = await _asyncpg_records(pool, self._fairy, made, self._engine.dialect, arguments)
        return made.rows(records)

    async def insert_many(self, stmt: sa.Insert, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT `rows` (every one with the same columns), pipelined in one exchange."""
        made = self._made(stmt)
        arguments = [made.arguments(row) for row in rows]
        _announce(self._engine.sync_engine, made.sql, arguments, many=True)
        try:
            await self._connection.executemany(made.sql, arguments)
        except asyncio.CancelledError:
            self._fairy.invalidate()
            raise
        except Exception as exc:
            pool = self._engine.sync_engine.pool
            raise _asyncpg_failure(pool, self._fairy, made.sql, exc) from exc

    def _made(self, stmt: sa.Select[Any] | sa.Insert) -> Driven:
        made = driven(self._engine.dialect, stmt)
        if made is None:
            raise TypeError("this statement cannot be sent by the driver (an expanding IN)")
        return made


@contextlib.asynccontextmanager
async def driven_transaction(engine: AsyncEngine) -> AsyncIterator[DrivenTransaction]:
    """A `DrivenTransaction` (PostgreSQL): committed when the block ends, rolled back when it
    raises; its connection back in the pool either way, or discarded when it was left in the
    middle of an exchange (cancelled) or found gone."""
    if engine.dialect.name != "postgresql":
        raise TypeError("a driven transaction is asyncpg's: PostgreSQL only")
    pool, dialect = engine.sync_engine.pool, engine.dialect
    try:
        fairy = await greenlet_spawn(pool.connect)
    except dialect.loaded_dbapi.Error as exc:
        raise _wrapped(dialect, None, exc) from exc
    try:
        connection: asyncpg.Connection = fairy.driver_connection
        try:
            transaction = connection.transaction()  # refused at once on a closed connection
            await transaction.start()
        except asyncio.CancelledError:
            fairy.invalidate()
            raise
        except Exception as exc:
            raise _asyncpg_failure(pool, fairy, "BEGIN", exc) from exc
        try:
            yield DrivenTransaction(engine, fairy)
        except BaseException:
            if fairy.is_valid:  # not already discarded by the failure itself
                try:
                    await transaction.rollback()
                except asyncio.CancelledError:
                    fairy.invalidate()
                    raise
                except Exception:  # the caller meets its own failure, not the rollback's
                    fairy.invalidate()
            raise
        try:
            await transaction.commit()
        except asyncio.CancelledError:
            # The COMMIT may or may not have reached the server: the connection is not
            # handed on in between.
            fairy.invalidate()
            raise
        except Exception as exc:
            raise _asyncpg_failure(pool, fairy, "COMMIT", exc) from exc
    finally:
        await greenlet_spawn(fairy.close)


async def rows_in_transaction(
    connection: sa.Connection,
    stmt: sa.Select[Any] | sa.Insert,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> Sequence[sa.Row[Any]] | None:
    """The rows of `stmt` (an INSERT: those it RETURNs; several sets of `params`: each, none
    returned) sent by asyncpg on the connection of a session (SQLAlchemy's `Connection`
    behind it), in its transaction, as SQLAlchemy's asyncpg cursor sends a statement: under the
    adapted connection's mutex, the transaction begun first if it was not (BEGIN, as the
    cursor would), through the connection's own cache of prepared statements, a failure
    made the adapted driver's error as the cursor makes it, then wrapped as SQLAlchemy wraps
    it (an IntegrityError stays one; a connection gone is invalidated, with every pooled
    connection opened before it). None where it cannot go that way (not PostgreSQL, a
    statement SQLAlchemy must render at each execution, a connection not at hand): run it
    through SQLAlchemy then.

    SQLAlchemy's execution path costs ~53 µs of CPU per statement more than this (measured
    on this machine in the same transaction): the intake's statements, a fifth of its
    instructions. Leans on the adapted connection's `_execute_mutex`, `_transaction`,
    `_start_transaction`, `_prepare` and `_handle_exception`
    (tests/core/test_driven_transaction.py: the same transaction, its errors, a cut or
    cancelled connection)."""
    dialect = connection.dialect
    if dialect.name != "postgresql":
        return None
    made = driven(dialect, stmt)
    fairy: Any = connection._dbapi_connection
    adapted: Any = getattr(fairy, "dbapi_connection", None)
    if made is None or not hasattr(adapted, "_execute_mutex"):
        return None
    many = not isinstance(params, Mapping)
    arguments: Any = (
        [made.arguments(one) for one in cast(Sequence[Mapping[str, Any]], params)]
        if many
        else made.arguments(cast(Mapping[str, Any], params))
    )
    _announce(connection.engine, made.sql, arguments, many=many)
    records: list[Any] = []
    try:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
            try:
                prepared, attributes = await adapted._prepare(
                    made.sql,
                    dialect._invalidate_schema_cache_asof,  # type: ignore[attr-defined]
                )
                if many:
                    await prepared.executemany(arguments)
                else:
                    records = await prepared.fetch(*arguments)
            except Exception as error:
                adapted._handle_exception(error)  # raises the adapted driver's error
    except asyncio.CancelledError:
        # Stopped in the middle of an exchange with the server (the request cancelled): the
        # connection is discarded, as SQLAlchemy discards one on such an exit, never handed
        # to the next session.
        connection.invalidate()
        raise
    except dialect.loaded_dbapi.Error as exc:
        wrapped = _wrapped(dialect, made.sql, exc)
        original = exc.__cause__ if exc.__cause__ is not None else exc
        if not wrapped.connection_invalidated and _is_lost(adapted._connection, original):
            wrapped.connection_invalidated = True
        if wrapped.connection_invalidated:
            # As SQLAlchemy's Connection does on a disconnect.
            connection.engine.pool._invalidate(fairy, exc)
            await greenlet_spawn(connection.invalidate, exc)
        raise wrapped from exc
    if made.result_processors is None:
        made.learn(dialect, [a.type.oid for a in attributes])
    return made.rows(records)


def _announce(engine: sa.Engine, sql: str, arguments: Any, *, many: bool = False) -> None:
    """What SQLAlchemy does before it sends a statement: the engine's `before_cursor_execute`
    listeners told (the tests' statement counter), the statement logged when SQL echo is on."""
    listeners = engine.dispatch.before_cursor_execute
    if listeners:
        listeners(None, None, sql, arguments, None, many)
    if _SQL_LOG.isEnabledFor(logging.INFO):
        _SQL_LOG.info(sql)


def _wrapped(dialect: Dialect, sql: str | None, exc: Any) -> sa.exc.DBAPIError:
    """The driver's error as SQLAlchemy's Connection wraps it (the subclass of its kind, a
    disconnect marked), so that the session's translation applies to it (503 and the rest)."""
    wrapped = sa.exc.DBAPIError.instance(
        sql,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=dialect.is_disconnect(exc, None, None),
        dialect=dialect,
    )
    assert isinstance(wrapped, sa.exc.DBAPIError)  # the driver's own errors only
    return wrapped


async def _asyncpg_records(
    pool: Pool, fairy: Any, made: Driven, dialect: Dialect, arguments: list[Any]
) -> Sequence[Any]:
    connection: asyncpg.Connection = fairy.driver_connection
    try:
        if made.result_processors is None:
            prepared = await connection.prepare(made.sql)
            made.learn(dialect, [a.type.oid for a in prepared.get_attributes()])
            records: list[Any] = await prepared.fetch(*arguments)
        else:
            records = await connection.fetch(made.sql, *arguments)
        return records
    except asyncio.CancelledError:
        # Stopped in the middle of an exchange with the server: the connection's protocol may
        # be anywhere in it. Discarded, never handed to the next request.
        fairy.invalidate()
        raise
    except Exception as exc:
        raise _asyncpg_failure(pool, fairy, made.sql, exc) from exc


def _is_lost(connection: asyncpg.Connection, exc: BaseException) -> bool:
    """Whether asyncpg's failure `exc` means the connection is gone. As SQLAlchemy's asyncpg
    dialect asks: is the connection closed? Also gone: the server's own word (08, 57P), the
    socket's, and a protocol left waiting for an answer that will never come (asyncpg's
    InternalClientError, "another operation is in progress": the server's farewell arrived
    while the connection sat in the pool; SQLAlchemy does not count it a disconnect)."""
    state = str(getattr(exc, "sqlstate", "") or "")
    return (
        connection.is_closed()
        or state.startswith(_LOST_STATES)
        or isinstance(exc, OSError | TimeoutError | asyncpg.exceptions.InternalClientError)
    )


def _asyncpg_failure(pool: Pool, fairy: Any, sql: str, exc: Exception) -> sa.exc.DBAPIError:
    """asyncpg's failure of `sql` as SQLAlchemy would wrap it, the connection invalidated
    (with every one the pool opened before it) when it is gone."""
    lost = _is_lost(fairy.driver_connection, exc)
    if lost:
        # As SQLAlchemy does on a disconnect: this connection, and every one the pool
        # opened before it, is replaced at its next checkout.
        pool._invalidate(fairy, exc)
    return sa.exc.DBAPIError(sql, None, exc, hide_parameters=True, connection_invalidated=lost)


def _all_rows(connection: sqlite3.Connection, sql: str, arguments: list[Any]) -> list[Any]:
    """In the connection's thread: the statement's rows, its cursor closed."""
    cursor = connection.execute(sql, arguments)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


async def _sqlite_records(
    pool: Pool, fairy: Any, made: Driven, dialect: Dialect, arguments: list[Any]
) -> Sequence[Any]:
    """The rows from SQLite, in one call into the connection's aiosqlite thread, as the
    engine's own cursors run a statement (core/sqlite_driver.py: the same mutex, the same
    hop); SQLite reports no column types, so the processors are the declared types'."""
    adapted = fairy.dbapi_connection  # sqlite_driver.OneHopConnection
    connection: aiosqlite.Connection = fairy.driver_connection
    try:
        try:
            async with adapted._execute_mutex:
                records: list[Any] = await connection._execute(  # type: ignore[no-untyped-call]
                    _all_rows, connection._conn, made.sql, arguments
                )
        except ValueError as exc:
            # aiosqlite's word for a connection whose thread is gone, made the driver's error
            # as SQLAlchemy's adapter makes it (a disconnect: replaced, 503).
            if str(exc).lower() not in ("no active connection", "connection closed"):
                raise
            raise sqlite3.OperationalError(str(exc)) from exc
    except asyncio.CancelledError:
        # The thread finishes the statement on its own; the connection is not handed on
        # with a call in flight.
        fairy.invalidate()
        raise
    except dialect.loaded_dbapi.Error as exc:
        wrapped = _wrapped(dialect, made.sql, exc)
        if wrapped.connection_invalidated:
            pool._invalidate(fairy, exc)
        raise wrapped from exc
    if made.result_processors is None:
        made.learn(dialect, [None] * len(made.types))
    return records
