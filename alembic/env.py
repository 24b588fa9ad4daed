"""Alembic environment: async engines, the same dialect setup as the service, and a lock.

Several processes may start at once (uvicorn workers, containers); each runs `upgrade head`
under a lock, so exactly one applies a pending migration and the others then find nothing
left to do: pg_advisory_xact_lock on PostgreSQL, BEGIN IMMEDIATE on SQLite.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from alembic import context
from service.core.db import Database
from service.core.settings import Settings
from service.core.types import UTCDateTime
from service.models import metadata

MIGRATION_LOCK_KEY = 0x52555441  # "RUTA"

config = context.config


def _settings() -> Settings:
    settings = config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | bool:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "service.core.types.UTCDateTime()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite's DDL is transactional, though Alembic assumes not and would commit after
        # each migration, letting the BEGIN IMMEDIATE lock go: a process waiting on it would
        # then apply, from a stale version, a migration another process had just applied.
        transactional_ddl=True,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")


async def _run_async() -> None:
    # SQLite rebuilds tables to alter them ("batch" mode): foreign keys are checked once at
    # the end (above) instead of on every statement.
    db = Database(_settings(), sqlite_foreign_keys=False)
    engine = db.engine.execution_options(ruta_sqlite_begin="IMMEDIATE")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await db.dispose()


def _run_offline() -> None:
    context.configure(
        url=_settings().database_url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_async())
