"""Migrations: upgrade, downgrade, upgrade again, and no drift between models and migrations."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.core import migrations
from service.core.crypto import Keyring, open_sealed
from service.core.settings import Settings
from service.core.time import utcnow
from service.main import open_database
from tests.support.databases import (
    create_database,
    drop_database,
    make_settings,
    query,
    settings_env,
)


@pytest.fixture
async def blank(var_dir: Path) -> AsyncIterator[Settings]:
    """Settings of a new, empty database of its own (no migration applied), dropped after."""
    url = await create_database(var_dir)
    yield make_settings(url, var_dir)
    await drop_database(url)


def stored(settings: Settings, value: uuid.UUID) -> object:
    """A UUID as raw SQL binds it: 32 hex digits on SQLite, a UUID on PostgreSQL."""
    return value.hex if settings.is_sqlite else value


async def upgrade_over(
    settings: Settings,
    statements: Sequence[tuple[str, Mapping[str, object]]],
    *,
    from_revision: str,
    to: str = "head",
) -> None:
    """Migrate to `from_revision`, insert what a database of that age held (each statement
    with its parameters, in one transaction), then migrate on to `to`."""
    await asyncio.to_thread(migrations.upgrade, settings, from_revision)
    db = open_database(settings)
    try:
        async with db.engine.begin() as conn:
            for sql, params in statements:
                await conn.execute(sa.text(sql), params)
    finally:
        await db.dispose()
    await asyncio.to_thread(migrations.upgrade, settings, to)


def opened(sealed: bytes | memoryview | None, data_key: bytes, owner: uuid.UUID) -> object:
    """Free text a migration sealed for its person, opened with her data key."""
    if sealed is None:
        return None
    return open_sealed(data_key, bytes(sealed), owner=str(owner))


async def test_upgrade_downgrade_upgrade_and_no_drift(blank: Settings) -> None:
    await asyncio.to_thread(migrations.upgrade, blank)
    await asyncio.to_thread(migrations.downgrade, blank, "base")
    db = open_database(blank)
    tables_after_downgrade = await query(
        db,
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        if blank.is_sqlite
        else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    )
    await db.dispose()
    await asyncio.to_thread(migrations.upgrade, blank)
    # Raises when the models describe something the migrations do not create.
    await asyncio.to_thread(migrations.check, blank)
    db = open_database(blank)
    [(heads,)] = await query(db, "SELECT count(*) FROM audit_chain_head")
    await db.dispose()

    assert {t for (t,) in tables_after_downgrade} <= {"alembic_version"}
    assert heads == 32


async def test_concurrent_migrate_processes_apply_each_migration_once(blank: Settings) -> None:
    env = {**os.environ, **settings_env(blank)}
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
    db = open_database(blank)
    versions = await query(db, "SELECT version_num FROM alembic_version")
    [(heads,)] = await query(db, "SELECT count(*) FROM audit_chain_head")
    await db.dispose()

    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in outcomes]
    assert [v for (v,) in versions] == sorted(migrations.head_revisions(blank))
    assert heads == 32


async def test_cases_from_before_persons_get_a_person_on_upgrade(blank: Settings) -> None:
    case = (
        "INSERT INTO case_file (id, status, victim_status, created_at, updated_at)"
        " VALUES (:id, 'identified', 'suspected', :at, :at)",
        {"id": stored(blank, uuid.uuid4()), "at": utcnow().replace(tzinfo=None)},
    )
    await upgrade_over(blank, [case], from_revision="0001")
    db = open_database(blank)
    rows = await query(
        db,
        "SELECT p.gender, c.is_witness FROM case_file c JOIN person p ON p.id = c.person_id",
    )
    await db.dispose()

    assert [(g, bool(w)) for g, w in rows] == [("unknown", False)]


async def test_documents_indexed_before_claims_are_claimed_by_their_earliest_surviving_person(
    blank: Settings,
) -> None:
    ids = {name: uuid.uuid4() for name in ("p0", "p1", "p2", "p3", "p4", "p5")}
    start = utcnow().replace(tzinfo=None)
    key = {name: stored(blank, value) for name, value in ids.items()}

    # Recorded before claims existed: the same document on three records (the earliest
    # linked into the latest), a document only on a record linked into one without it, and
    # a name-and-birth-date index, which is never a claim.
    persons = [("p2", None, 2), ("p1", None, 1), ("p0", "p2", 0), ("p4", None, 1)]
    persons += [("p3", "p4", 0), ("p5", None, 0)]
    indexes = [("p0", "document", "x"), ("p1", "document", "x"), ("p2", "document", "x")]
    indexes += [("p3", "document", "y"), ("p5", "name_and_birth_date", "z")]
    statements = [
        (
            "INSERT INTO person (id, age_is_estimate, gender, languages, merged_into,"
            " created_at) VALUES (:id, false, 'female', '[]', :merged_into, :at)",
            {
                "id": key[name],
                "merged_into": key[merged_into] if merged_into else None,
                "at": start + timedelta(minutes=minutes),
            },
        )
        for name, merged_into, minutes in persons
    ]
    statements += [
        (
            "INSERT INTO person_blind_index (id, person_id, kind, digest)"
            " VALUES (:id, :person_id, :kind, :digest)",
            {
                "id": stored(blank, uuid.uuid4()),
                "person_id": key[name],
                "kind": kind,
                "digest": digest * 64,
            },
        )
        for name, kind, digest in indexes
    ]
    # Up to the last revision before erasures were recorded: these records have no data
    # key, which from 0024 on means erased (and an erased person holds no claim).
    await upgrade_over(blank, statements, from_revision="0007", to="0022")
    db = open_database(blank)
    claims = await query(
        db, "SELECT kind, digest, person_id FROM person_identifier_claim ORDER BY digest"
    )
    await db.dispose()

    names = {person_id: name for name, person_id in ids.items()}
    assert [(kind, digest[0], names[uuid.UUID(str(p))]) for kind, digest, p in claims] == [
        ("document", "x", "p1"),
        ("document", "y", "p4"),
    ]


async def test_free_text_stored_in_clear_before_0021_is_sealed_for_its_person_on_upgrade(
    blank: Settings,
) -> None:
    keyring = Keyring(blank)
    ids = {name: uuid.uuid4() for name in ("alive", "erased", "c1", "c2", "org", "user")}
    ids |= {name: uuid.uuid4() for name in ("r1", "r2", "s1", "s2", "s3", "o1", "o2")}
    at = utcnow().replace(tzinfo=None)

    rows = [
        "INSERT INTO person (id, age_is_estimate, gender, languages, created_at)"
        " VALUES (:alive, false, 'female', '[]', :at), (:erased, false, 'female', '[]', :at)",
        "INSERT INTO person_key (person_id, master_key_id, wrapped_key, created_at)"
        " VALUES (:alive, :key_id, :wrapped, :at)",
        "INSERT INTO organization (id, code, name, kind, created_at)"
        " VALUES (:org, 'ORG', 'Org', 'ngo', :at)",
        "INSERT INTO app_user (id, username, organization_id, role, is_active, created_at)"
        " VALUES (:user, 'u', :org, 'caseworker', true, :at)",
        "INSERT INTO case_file (id, status, victim_status, created_at, updated_at, person_id,"
        " is_witness, row_version) VALUES (:c1, 'referred', 'suspected', :at, :at, :alive,"
        " false, 1), (:c2, 'referred', 'suspected', :at, :at, :erased, false, 1)",
        "INSERT INTO referral (id, case_id, from_org_id, to_org_id, purpose, status, reason,"
        " created_by, created_at, due_at, updated_at, row_version) VALUES"
        " (:r1, :c1, :org, :org, 'shelter', 'rejected', 'Rosa en Juliaca', :user, :at, :at,"
        " :at, 1), (:r2, :c2, :org, :org, 'shelter', 'expired', 'unanswered_past_deadline',"
        " :user, :at, :at, :at, 1)",
        "INSERT INTO referral_status_change (id, referral_id, to_status, reason, at) VALUES"
        " (:s1, :r1, 'rejected', 'Rosa en Juliaca', :at), (:s2, :r2, 'expired',"
        " 'unanswered_past_deadline', :at), (:s3, :r1, 'requested', NULL, :at)",
        "INSERT INTO consent_override (id, case_id, organization_id, justification, recorded_by,"
        " recorded_at) VALUES (:o1, :c1, :org, 'Rosa corre peligro', :user, :at),"
        " (:o2, :c2, :org, 'Ana corre peligro', :user, :at)",
    ]
    wrapped = keyring.wrap(keyring.new_data_key(), owner=str(ids["alive"]))
    params = {name: stored(blank, value) for name, value in ids.items()} | {"at": at}
    params |= {"key_id": wrapped.master_key_id, "wrapped": wrapped.blob}
    await upgrade_over(blank, [(sql, params) for sql in rows], from_revision="0020")
    db = open_database(blank)
    reasons = await query(
        db, "SELECT id, reason_code, reason_ciphertext FROM referral_status_change"
    )
    referrals = await query(db, "SELECT id, reason_code, reason_ciphertext FROM referral")
    overrides = await query(db, "SELECT id, justification_ciphertext FROM consent_override")
    columns = await query(
        db,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE column_name IN ('reason', 'justification') AND table_name IN"
        " ('referral', 'referral_status_change', 'consent_override')"
        if not blank.is_sqlite
        else "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p"
        " WHERE p.name IN ('reason', 'justification') AND m.name IN"
        " ('referral', 'referral_status_change', 'consent_override')",
    )
    await db.dispose()

    data_key = keyring.unwrap(wrapped, owner=str(ids["alive"]))
    names = {value: name for name, value in ids.items()}

    def by_name(found: list[tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
        return {
            names[uuid.UUID(str(row[0]))]: tuple(
                opened(v, data_key, ids["alive"]) if isinstance(v, bytes | memoryview) else v
                for v in row[1:]
            )
            for row in found
        }

    assert by_name(referrals) == {
        "r1": (None, {"reason": "Rosa en Juliaca"}),
        "r2": ("unanswered_past_deadline", None),
    }
    assert by_name(reasons) == {
        "s1": (None, {"reason": "Rosa en Juliaca"}),
        "s2": ("unanswered_past_deadline", None),
        "s3": (None, None),
    }
    # Erased: no key to seal it under, so the text is dropped rather than kept in clear.
    assert by_name(overrides) == {"o1": ({"justification": "Rosa corre peligro"},), "o2": (None,)}
    assert columns == []


async def test_risk_change_reasons_stored_in_clear_before_0022_are_sealed_on_upgrade(
    blank: Settings,
) -> None:
    keyring = Keyring(blank)
    names = ("alive", "erased", "c1", "c2", "org", "user", "q1", "q2", "k1", "k2", "k3")
    ids = {name: uuid.uuid4() for name in names}
    at = utcnow().replace(tzinfo=None)

    rows = [
        "INSERT INTO person (id, age_is_estimate, gender, languages, created_at)"
        " VALUES (:alive, false, 'female', '[]', :at), (:erased, false, 'female', '[]', :at)",
        "INSERT INTO person_key (person_id, master_key_id, wrapped_key, created_at)"
        " VALUES (:alive, :key_id, :wrapped, :at)",
        "INSERT INTO region (code, name, capital) VALUES ('15', 'Lima', 'Lima')",
        "INSERT INTO organization (id, code, name, kind, created_at)"
        " VALUES (:org, 'ORG', 'Org', 'ngo', :at)",
        "INSERT INTO app_user (id, username, organization_id, role, is_active, created_at)"
        " VALUES (:user, 'u', :org, 'caseworker', true, :at)",
        "INSERT INTO case_file (id, status, victim_status, created_at, updated_at, person_id,"
        " is_witness, row_version) VALUES (:c1, 'referred', 'suspected', :at, :at, :alive,"
        " false, 1), (:c2, 'referred', 'suspected', :at, :at, :erased, false, 1)",
        "INSERT INTO placement_request (id, case_id, status, minor, risk_level, needs, region,"
        " requested_by, requested_at) VALUES (:q1, :c1, 'waiting', false, 3, '{}', '15', :user,"
        " :at), (:q2, :c2, 'waiting', false, 2, '{}', '15', :user, :at)",
        "INSERT INTO placement_request_risk_change (id, request_id, from_level, to_level, reason,"
        " changed_by, changed_at) VALUES (:k1, :q1, 1, 2, 'Rosa vio al tratante', :user, :at),"
        " (:k2, :q1, 2, 3, 'su hermana en Juliaca', :user, :at),"
        " (:k3, :q2, 1, 2, 'Ana vio al tratante', :user, :at)",
    ]
    wrapped = keyring.wrap(keyring.new_data_key(), owner=str(ids["alive"]))
    params = {name: stored(blank, value) for name, value in ids.items()} | {"at": at}
    params |= {"key_id": wrapped.master_key_id, "wrapped": wrapped.blob}
    await upgrade_over(blank, [(sql, params) for sql in rows], from_revision="0021")
    db = open_database(blank)
    changes = await query(
        db, "SELECT id, to_level, reason_ciphertext FROM placement_request_risk_change"
    )
    columns = await query(
        db,
        "SELECT column_name FROM information_schema.columns"
        " WHERE column_name = 'reason' AND table_name = 'placement_request_risk_change'"
        if not blank.is_sqlite
        else "SELECT name FROM pragma_table_info('placement_request_risk_change')"
        " WHERE name = 'reason'",
    )
    await db.dispose()

    data_key = keyring.unwrap(wrapped, owner=str(ids["alive"]))
    by_id = {value: name for name, value in ids.items()}

    found = {
        by_id[uuid.UUID(str(row_id))]: (level, opened(sealed, data_key, ids["alive"]))
        for row_id, level, sealed in changes
    }
    assert found == {
        "k1": (2, {"reason": "Rosa vio al tratante"}),
        "k2": (3, {"reason": "su hermana en Juliaca"}),
        # Erased: no key to seal it under, so the text is dropped rather than kept in clear.
        "k3": (2, None),
    }
    assert columns == []


async def test_persons_erased_by_hand_before_0024_are_completed_and_recorded(
    blank: Settings,
) -> None:
    ids = {name: uuid.uuid4() for name in ("alive", "erased", "i1", "i2", "b1", "b2", "c1", "c2")}
    ids |= {"org": uuid.uuid4()}
    at = utcnow().replace(tzinfo=None)

    # Two persons with everything an identification leaves; the data key of one was deleted
    # by hand, the way persons were erased before erasures were recorded.
    rows = [
        "INSERT INTO person (id, age_is_estimate, gender, languages, created_at)"
        " VALUES (:alive, false, 'female', '[]', :at), (:erased, false, 'female', '[]', :at)",
        "INSERT INTO person_key (person_id, master_key_id, wrapped_key, created_at)"
        " VALUES (:alive, 'k1', :blob, :at)",
        "INSERT INTO organization (id, code, name, kind, created_at)"
        " VALUES (:org, 'ORG', 'Org', 'ngo', :at)",
        "INSERT INTO person_identity (id, person_id, recorded_by_org, ciphertext, recorded_at)"
        " VALUES (:i1, :alive, :org, :blob, :at), (:i2, :erased, :org, :blob, :at)",
        "INSERT INTO person_blind_index (id, person_id, kind, digest)"
        " VALUES (:b1, :alive, 'document', 'a'), (:b2, :erased, 'document', 'e')",
        "INSERT INTO person_identifier_claim (id, kind, digest, person_id, claimed_at)"
        " VALUES (:c1, 'document', 'a', :alive, :at), (:c2, 'document', 'e', :erased, :at)",
    ]
    params = {name: stored(blank, value) for name, value in ids.items()} | {
        "at": at,
        "blob": b"\x00" * 40,
    }
    await upgrade_over(blank, [(sql, params) for sql in rows], from_revision="0022")
    db = open_database(blank)
    left = {
        table: sorted(str(uuid.UUID(str(p))) for (p,) in await query(db, sql))
        for table, sql in {
            "identity": "SELECT person_id FROM person_identity",
            "index": "SELECT person_id FROM person_blind_index",
            "claim": "SELECT person_id FROM person_identifier_claim",
        }.items()
    }
    erasures = await query(db, "SELECT person_id, legal_basis FROM person_erasure")
    await db.dispose()

    alive = str(ids["alive"])
    assert left == {"identity": [alive], "index": [alive], "claim": [alive]}
    assert [(uuid.UUID(str(p)), basis) for p, basis in erasures] == [(ids["erased"], "unrecorded")]


async def test_locations_stored_in_clear_before_0025_are_sealed_on_upgrade_never_restored(
    blank: Settings,
) -> None:
    keyring = Keyring(blank)
    ids = {name: uuid.uuid4() for name in ("alive", "erased", "c1", "c2", "c3", "c4")}
    at = utcnow().replace(tzinfo=None)

    rows = [
        "INSERT INTO person (id, age_is_estimate, gender, languages, created_at)"
        " VALUES (:alive, false, 'female', '[]', :at), (:erased, false, 'female', '[]', :at)",
        "INSERT INTO person_key (person_id, master_key_id, wrapped_key, created_at)"
        " VALUES (:alive, :key_id, :wrapped, :at)",
        "INSERT INTO person_erasure (person_id, legal_basis, erased_at)"
        " VALUES (:erased, 'data_subject_request', :at)",
        "INSERT INTO case_file (id, status, victim_status, created_at, updated_at, person_id,"
        " is_witness, row_version, current_location) VALUES"
        " (:c1, 'referred', 'suspected', :at, :at, :alive, false, 1, 'Casa de Rosa, Juliaca'),"
        " (:c2, 'referred', 'suspected', :at, :at, :alive, false, 1, 'Albergue Santa Rosa'),"
        " (:c3, 'referred', 'suspected', :at, :at, :alive, false, 1, NULL),"
        " (:c4, 'referred', 'suspected', :at, :at, :erased, false, 1, 'Casa de Ana, Cusco')",
    ]
    wrapped = keyring.wrap(keyring.new_data_key(), owner=str(ids["alive"]))
    params = {name: stored(blank, value) for name, value in ids.items()} | {"at": at}
    params |= {"key_id": wrapped.master_key_id, "wrapped": wrapped.blob}
    await upgrade_over(blank, [(sql, params) for sql in rows], from_revision="0024", to="0025")
    db = open_database(blank)
    cases = await query(db, "SELECT id, current_location_ciphertext FROM case_file")
    columns = await query(
        db,
        "SELECT column_name FROM information_schema.columns"
        " WHERE column_name = 'current_location' AND table_name = 'case_file'"
        if not blank.is_sqlite
        else "SELECT name FROM pragma_table_info('case_file') WHERE name = 'current_location'",
    )
    await db.dispose()
    await asyncio.to_thread(migrations.downgrade, blank, "0024")
    db = open_database(blank)
    downgraded = await query(db, "SELECT id, current_location FROM case_file")
    await db.dispose()

    data_key = keyring.unwrap(wrapped, owner=str(ids["alive"]))
    by_id = {value: name for name, value in ids.items()}
    assert {
        by_id[uuid.UUID(str(case_id))]: opened(sealed, data_key, ids["alive"])
        for case_id, sealed in cases
    } == {
        "c1": {"current_location": "Casa de Rosa, Juliaca"},
        "c2": {"current_location": "Albergue Santa Rosa"},
        "c3": None,
        # Erased: no key to seal it under, so the text is dropped rather than kept in clear.
        "c4": None,
    }
    assert columns == []
    # The downgrade never puts a text back in clear: a placeholder where one was sealed.
    placeholder = "(sealed in 0025; not restored by the downgrade)"
    assert {by_id[uuid.UUID(str(case_id))]: text for case_id, text in downgraded} == {
        "c1": placeholder,
        "c2": placeholder,
        "c3": None,
        "c4": None,
    }
