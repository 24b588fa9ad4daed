"""Engines, sessions and every dialect quirk Ruta depends on, behind one interface.

SQLite is the embedded default and PostgreSQL the production database. What differs between
them (pragmas, how a writing transaction begins, row locks, upserts) is decided here and
nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.settings import Settings

S = TypeVar("S", bound=Select)  # type: ignore[type-arg]

_BEGIN_OPTION = "ruta_sqlite_begin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Session info key: the session's database refuses writes (see is_read_only).
READ_ONLY_INFO = "ruta_read_only"


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
        address = make_url(url or settings.database_url)
        self.dialect = address.get_backend_name()
        # Bound parameters never reach exception messages or logs: they may be about a victim.
        # No `echo`: RUTA_SQL_ECHO sets the level of the "sqlalchemy.engine" logger
        # (core/logs.py), so that statements go through the one root handler, once each.
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.dialect == "sqlite":
            _ensure_sqlite_directory(address.database)
        else:
            kwargs |= {"pool_size": settings.db_pool_size, "max_overflow": 0, "pool_pre_ping": True}
        self.engine: AsyncEngine = create_async_engine(address, **kwargs)
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
        self._reading = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info=info
        )
        self._writing = async_sessionmaker(
            writer, class_=AsyncSession, expire_on_commit=False, info=info
        )

    @contextlib.asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        maker = self._writing if write and not self.read_only else self._reading
        async with maker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


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
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


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


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel table model (for bulk statements)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


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
    holds the database's write lock, so the row `pick()` names will do."""
    if conn.dialect.name == "postgresql":
        free = conn.execute(
            sa.select(table).order_by(sa.func.random()).limit(1).with_for_update(skip_locked=True)
        ).first()
        if free is not None:
            return free
        return conn.execute(sa.select(table).where(key == pick()).with_for_update()).one()
    return conn.execute(sa.select(table).where(key == pick())).one()


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
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]], *, on: Sequence[str]
) -> None:
    """Insert rows, silently skipping those that collide on the unique columns `on`."""
    if not rows:
        return
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    stmt = insert(table).values(list(rows)).on_conflict_do_nothing(index_elements=list(on))
    await session.exec(stmt)


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, committed before the response is sent."""
    db: Database = request.app.state.db
    endpoint = request.scope.get("endpoint")
    write = request.method not in SAFE_METHODS or getattr(endpoint, "__ruta_writes__", False)
    async with db.session(write=write) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


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
