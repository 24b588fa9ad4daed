"""The migration that stores key fingerprints: both ways, audit rows still append-only."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
import sqlalchemy as sa

from service.audit import service as audit_service
from service.core import migrations
from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.main import audit_keys, open_database
from tests.support.audit import create_cases, make_actor
from tests.support.databases import execute, query


def _fingerprint_migration() -> tuple[str, str]:
    """(revision, down_revision) of the migration, read from its file: merges re-chain them."""
    path = migrations.migrations_dir() / "versions" / "2026_11_28_2110-audit_key_fingerprint.py"
    spec = importlib.util.spec_from_file_location("audit_key_fingerprint", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.revision), str(module.down_revision)


async def _assert_append_only(db: Database) -> None:
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await execute(db, statement)


async def test_fingerprints_migrate_both_ways_and_older_events_still_verify(
    fresh_settings: Settings,
) -> None:
    revision, down_revision = _fingerprint_migration()
    db = open_database(fresh_settings)
    await create_cases(db, await make_actor(db, Security.from_settings(fresh_settings)), 3)
    await db.dispose()

    await asyncio.to_thread(migrations.downgrade, fresh_settings, down_revision)
    db = open_database(fresh_settings)
    await _assert_append_only(db)
    await db.dispose()
    await asyncio.to_thread(migrations.upgrade, fresh_settings, revision)
    db = open_database(fresh_settings)
    await _assert_append_only(db)
    fingerprints = await query(db, "SELECT DISTINCT key_fingerprint FROM audit_event")
    async with db.session(write=False) as session:
        report = await audit_service.verify_chains(session, keys=audit_keys(fresh_settings))
    await db.dispose()

    # The events sealed before the column existed have no fingerprint, and still verify.
    assert fingerprints == [(None,)]
    assert report.ok, report.first_break
    assert report.events > 0
