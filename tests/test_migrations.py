"""Migrations: upgrade, downgrade, upgrade again, and no drift between models and migrations."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from service.core import migrations
from service.core.time import utcnow
from service.main import open_database
from tests.support.databases import (
    create_database,
    drop_database,
    make_settings,
    query,
    settings_env,
)


async def test_upgrade_downgrade_upgrade_and_no_drift(var_dir: Path) -> None:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    try:
        await asyncio.to_thread(migrations.upgrade, settings)
        await asyncio.to_thread(migrations.downgrade, settings, "base")
        db = open_database(settings)
        tables_after_downgrade = await query(
            db,
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            if settings.is_sqlite
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        )
        await db.dispose()
        await asyncio.to_thread(migrations.upgrade, settings)
        # Raises when the models describe something the migrations do not create.
        await asyncio.to_thread(migrations.check, settings)
        db = open_database(settings)
        [(heads,)] = await query(db, "SELECT count(*) FROM audit_chain_head")
        await db.dispose()
    finally:
        await drop_database(url)

    assert {t for (t,) in tables_after_downgrade} <= {"alembic_version"}
    assert heads == 32


async def test_concurrent_migrate_processes_apply_each_migration_once(var_dir: Path) -> None:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    env = {**os.environ, **settings_env(settings)}
    try:
        # Three `ruta migrate` processes starting at once, as workers or containers do.
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service",
                "migrate",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        outcomes = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
        db = open_database(settings)
        versions = await query(db, "SELECT version_num FROM alembic_version")
        [(heads,)] = await query(db, "SELECT count(*) FROM audit_chain_head")
        await db.dispose()
    finally:
        await drop_database(url)

    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in outcomes]
    assert [v for (v,) in versions] == sorted(migrations.head_revisions(settings))
    assert heads == 32


async def test_cases_from_before_persons_get_a_person_on_upgrade(var_dir: Path) -> None:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    try:
        await asyncio.to_thread(migrations.upgrade, settings, "0001")
        db = open_database(settings)
        case_id = uuid.uuid4()
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO case_file (id, status, victim_status, created_at, updated_at)"
                    " VALUES (:id, 'identified', 'suspected', :at, :at)"
                ),
                {
                    "id": case_id.hex if settings.is_sqlite else case_id,
                    "at": utcnow().replace(tzinfo=None),
                },
            )
        await db.dispose()
        await asyncio.to_thread(migrations.upgrade, settings)
        db = open_database(settings)
        rows = await query(
            db,
            "SELECT p.gender, c.is_witness FROM case_file c JOIN person p ON p.id = c.person_id",
        )
        await db.dispose()
    finally:
        await drop_database(url)

    assert [(g, bool(w)) for g, w in rows] == [("unknown", False)]


async def test_documents_indexed_before_claims_are_claimed_by_their_earliest_surviving_person(
    var_dir: Path,
) -> None:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    ids = {name: uuid.uuid4() for name in ("p0", "p1", "p2", "p3", "p4", "p5")}
    start = utcnow().replace(tzinfo=None)

    def key(name: str) -> object:
        return ids[name].hex if settings.is_sqlite else ids[name]

    # Recorded before claims existed: the same document on three records (the earliest
    # linked into the latest), a document only on a record linked into one without it, and
    # a name-and-birth-date index, which is never a claim.
    persons = [("p2", None, 2), ("p1", None, 1), ("p0", "p2", 0), ("p4", None, 1)]
    persons += [("p3", "p4", 0), ("p5", None, 0)]
    indexes = [("p0", "document", "x"), ("p1", "document", "x"), ("p2", "document", "x")]
    indexes += [("p3", "document", "y"), ("p5", "name_and_birth_date", "z")]
    try:
        await asyncio.to_thread(migrations.upgrade, settings, "0007")
        db = open_database(settings)
        async with db.engine.begin() as conn:
            for name, merged_into, minutes in persons:
                await conn.execute(
                    sa.text(
                        "INSERT INTO person (id, age_is_estimate, gender, languages, merged_into,"
                        " created_at) VALUES (:id, false, 'female', '[]', :merged_into, :at)"
                    ),
                    {
                        "id": key(name),
                        "merged_into": key(merged_into) if merged_into else None,
                        "at": start + timedelta(minutes=minutes),
                    },
                )
            for name, kind, digest in indexes:
                await conn.execute(
                    sa.text(
                        "INSERT INTO person_blind_index (id, person_id, kind, digest)"
                        " VALUES (:id, :person_id, :kind, :digest)"
                    ),
                    {
                        "id": uuid.uuid4().hex if settings.is_sqlite else uuid.uuid4(),
                        "person_id": key(name),
                        "kind": kind,
                        "digest": digest * 64,
                    },
                )
        await db.dispose()
        await asyncio.to_thread(migrations.upgrade, settings)
        db = open_database(settings)
        claims = await query(
            db, "SELECT kind, digest, person_id FROM person_identifier_claim ORDER BY digest"
        )
        await db.dispose()
    finally:
        await drop_database(url)

    names = {person_id: name for name, person_id in ids.items()}
    assert [(kind, digest[0], names[uuid.UUID(str(p))]) for kind, digest, p in claims] == [
        ("document", "x", "p1"),
        ("document", "y", "p4"),
    ]
