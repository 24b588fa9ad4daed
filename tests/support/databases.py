"""Test databases: a SQLite file, or a throwaway PostgreSQL database, migrated by Alembic."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from service.core import migrations
from service.core.db import Database
from service.core.settings import Settings
from service.main import open_database
from service.pathway import seed as reference_seed

POSTGRES_URL = os.environ.get("RUTA_TEST_DATABASE_URL", "")
ON_POSTGRES = POSTGRES_URL.startswith("postgresql")


def make_settings(database_url: str, var_dir: Path, **overrides: object) -> Settings:
    """Settings of a test run: fixed keys, cheap password hashing."""
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "var_dir": var_dir,
        "secret_key": "test-secret-key-that-is-long-enough-for-hs256",
        "audit_key": "test-audit-key",
        "master_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "blind_index_key": "test-blind-index-key",
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "db_pool_size": 5,
        "referral_sweep_seconds": 0,
        # Every request reads its principal: a change to a user is seen at the next request
        # and the statement budgets count the uncached principal
        # (tests/identity/test_principal_cache.py tests the cache).
        "principal_cache_seconds": 0,
        # Every test request comes from one address: limits far above any test's traffic
        # (tests/core/test_ratelimit.py sets its own).
        "rate_limit_per_address": 1_000_000,
        "rate_limit_per_user": 1_000_000,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def _admin_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


async def create_database(tmp_dir: Path) -> str:
    """A new, empty database of the kind this run targets; returns its SQLAlchemy URL."""
    name = f"ruta_test_{uuid.uuid4().hex[:12]}"
    if not ON_POSTGRES:
        return f"sqlite+aiosqlite:///{tmp_dir / (name + '.db')}"
    conn = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = make_url(url).database
    conn = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate_and_seed(settings: Settings) -> None:
    """Bring a database to head through Alembic (in a thread: env.py runs its own loop), seed it."""
    await asyncio.to_thread(migrations.upgrade, settings)
    db = open_database(settings)
    try:
        async with db.session() as session:
            await reference_seed.seed(session, dataset="peru-2017")
    finally:
        await db.dispose()


async def query(db: Database, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """Rows of a raw SQL query, read the way an outsider with database access would."""
    async with db.engine.connect() as conn:
        result = await conn.execute(sa.text(sql), params)
        return [tuple(row) for row in result.all()]


async def waiting_for_a_lock(db: Database) -> bool:
    """Whether a transaction of this PostgreSQL database waits for a lock (row or advisory)
    just now."""
    rows = await query(
        db,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return bool(rows[0][0])


async def execute(db: Database, sql: str, **params: object) -> None:
    """Run raw SQL in its own committed transaction."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def terminate_backends(settings: Settings, pids: list[int]) -> None:
    """Cut these PostgreSQL server connections, as a restart or a network cut would; from a
    pool of its own, so that the connection that cuts is never one of those cut."""
    admin = Database(settings)
    try:
        await execute(
            admin,
            "SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid",
            pids=pids,
        )
    finally:
        await admin.dispose()


def settings_to_json(settings: Settings) -> str:
    """Settings, secrets included, for handing to a spawned process."""
    data = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings.model_dump().items()
    }
    return json.dumps(data, default=str)


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as RUTA_* environment variables, for a `ruta` subprocess."""
    return {
        f"RUTA_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in json.loads(settings_to_json(settings)).items()
        if value is not None
    }
