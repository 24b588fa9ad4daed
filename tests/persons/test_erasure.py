"""Erasing a person: after it, no answer, dump or log holds her name or document, what was
sealed for her cannot be opened with the master key, and the statistics do not change."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from service.core.crypto import Keyring, WrappedKey, open_sealed
from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.models import metadata
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, TrueTable, count_tables
from tests.support.clients import client_from
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, case_body, person_body

# Letters no hexadecimal or base64 rendering of random bytes spells by chance.
GIVEN = "Zoraida"
FAMILY = "Huamanchumo"
PASSPORT = "QZ7X91K4WJ"
NEEDLES = (GIVEN, FAMILY, PASSPORT)
# Blobs and binary columns that hold no text about a person.
NOT_SEALED_FOR_PERSONS = {
    ("person_key", "wrapped_key"),
    ("idempotency_key", "wrapped_key"),
    ("idempotency_key", "response"),
    ("simulation_chart", "png"),
}


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    factory: Factory
    settings: Settings

    @property
    def db(self) -> Database:
        database: Database = self.app.state.db
        return database


@pytest.fixture
async def world(fresh_settings: Settings) -> AsyncIterator[World]:
    app = create_app(fresh_settings)
    async with app.router.lifespan_context(app), client_from(app, "203.0.113.41") as client:
        yield World(app, client, Factory(app.state.db, app.state.security), fresh_settings)


def found_in(text: str) -> list[str]:
    """The needles a text holds, in clear or as the hexadecimal of their bytes (how dumps
    render binary columns)."""
    lowered = text.casefold()
    hits = [n for n in NEEDLES if n.casefold() in lowered]
    hits += [f"hex:{n}" for n in NEEDLES if n.encode().hex() in lowered]
    return hits


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def walk_the_pathway(w: World) -> dict[str, Any]:
    """Identify the person (where she is now sealed), consent, screen, refer (a reason
    sealed), close: each free text names her."""
    police = await w.factory.user("PNP", Role.identifier)
    mimp = await w.factory.user("MIMP", Role.caseworker)
    person = person_body(
        given_name=GIVEN,
        family_name=f"{FAMILY} Ccori",
        document={"type": "passport", "number": PASSPORT},
        birth_date="2009-05-17",
        age_estimate=None,
        phone="+51 984 000 111",
        address="Jr. Los Pinos 12, Puerto Maldonado",
    )
    case = await _ok(
        await w.client.post(
            "/v1/cases",
            json=case_body(
                person=person,
                identified_on="2026-03-14",
                current_location=f"Casa de su tía, {GIVEN} {FAMILY}'s aunt, Puerto Maldonado",
            ),
            headers=police.headers,
        ),
        201,
    )
    case_id = case["id"]
    consent = await _ok(
        await w.client.post(
            f"/v1/cases/{case_id}/consents",
            json={
                "purposes": ["services", "data_sharing", "statistics"],
                "share_with": ["MIMP"],
                "language": "es",
            },
            headers=police.headers,
        ),
        201,
    )
    await _ok(
        await w.client.post(
            f"/v1/cases/{case_id}/screenings",
            json={"victim_status": "confirmed", "notes": f"{GIVEN} {FAMILY} told us everything"},
            headers=police.headers,
        ),
        201,
    )
    referral = await _ok(
        await w.client.post(
            f"/v1/cases/{case_id}/referrals",
            json={"to_org": "MIMP", "purpose": "protection_services"},
            headers=police.headers,
        ),
        201,
    )
    await _ok(
        await w.client.post(
            f"/v1/referrals/{referral['id']}/reject",
            json={"reason": f"{GIVEN} {FAMILY} is already with her aunt, passport {PASSPORT}"},
            headers=mimp.headers,
        )
    )
    await _ok(
        await w.client.post(
            f"/v1/cases/{case_id}/transitions",
            json={"to": "closed", "reason": "declined_services", "note": f"{GIVEN} declined"},
            headers=police.headers,
        ),
        201,
    )
    return {
        "case": case,
        "consent_id": consent["id"],
        "referral_id": referral["id"],
        "police": police,
        "mimp": mimp,
    }


def _paths(app: FastAPI, ids: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Every GET route whose path parameters this test can fill, filled."""
    filled = []
    for path, operations in app.openapi()["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", path)
        if all(n in ids for n in names):
            params = {"year": "2026"} if "{code}" in path else {}
            filled.append((path.format(**{n: ids[n] for n in names}), params))
    return filled


async def every_answer(w: World, users: list[SignedInUser], ids: dict[str, str]) -> str:
    """Every GET answer those users get about the case (and the lists, the audit trail, the
    statistics): never a server error."""
    answers = []
    for path, params in _paths(w.app, ids):
        for user in users:
            response = await w.client.get(path, params=params, headers=user.headers)
            assert response.status_code < 500, (path, response.text)
            answers.append(f"{path} {response.status_code} {response.text}")
    return "\n".join(answers)


async def full_dump(settings: Settings) -> str:
    """The whole database as a dump holds it (every row of every table)."""
    url = make_url(settings.database_url)
    if settings.is_sqlite:

        def dump() -> str:
            connection = sqlite3.connect(str(url.database))
            try:
                return "\n".join(connection.iterdump())
            finally:
                connection.close()

        return await asyncio.to_thread(dump)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "--no-owner", "--data-only", dsn],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


async def raw_database_file(settings: Settings) -> bytes:
    """The bytes of an SQLite database file, its write-ahead log checkpointed into it first
    (and emptied), free pages included: what a copy of the file would hold."""
    path = str(make_url(settings.database_url).database)

    def read() -> bytes:
        connection = sqlite3.connect(path)
        try:
            [(busy, _, _)] = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            assert busy == 0, "a reader kept the log from being checkpointed"
        finally:
            connection.close()
        with open(path, "rb") as file:
            return file.read()

    return await asyncio.to_thread(read)


async def _bytes_deleted_by_erasure(db: Database, person_id: str) -> list[bytes]:
    """The stored bytes that erasing the person deletes: her wrapped data key and her
    identity records' ciphertexts."""
    key, identity = metadata.tables["person_key"], metadata.tables["person_identity"]
    owner = uuid.UUID(person_id)
    async with db.engine.connect() as conn:
        wrapped = (
            await conn.execute(sa.select(key.c.wrapped_key).where(key.c.person_id == owner))
        ).scalars()
        texts = (
            await conn.execute(
                sa.select(identity.c.ciphertext).where(identity.c.person_id == owner)
            )
        ).scalars()
        return [bytes(value) for value in [*wrapped, *texts]]


async def sealed_blobs(db: Database) -> list[bytes]:
    """Every sealed text the database holds, in any table."""
    blobs: list[bytes] = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, sa.LargeBinary):
                continue
            if (table.name, column.name) in NOT_SEALED_FOR_PERSONS:
                continue
            rows = await query(
                db,
                f"SELECT {column.name} FROM {table.name} WHERE {column.name} IS NOT NULL",  # noqa: S608
            )
            blobs += [bytes(value) for (value,) in rows]
    return blobs


async def data_keys(db: Database, keyring: Keyring) -> dict[str, bytes]:
    """Every data key the database still holds, unwrapped with the master key."""
    rows = await query(db, "SELECT person_id, master_key_id, wrapped_key FROM person_key")
    keys = {}
    for person_id, master_key_id, wrapped in rows:
        owner = str(uuid.UUID(str(person_id)))
        keys[owner] = keyring.unwrap(WrappedKey(master_key_id, bytes(wrapped)), owner=owner)
    return keys


async def opened(db: Database, keyring: Keyring, owner: str) -> list[dict[str, Any]]:
    """What the master key still opens of the texts sealed for a person: any data key in the
    database, tried on every sealed text bound to her."""
    payloads = []
    for blob in await sealed_blobs(db):
        for data_key in (await data_keys(db, keyring)).values():
            try:
                payloads.append(open_sealed(data_key, blob, owner=owner))
            except InvalidTag:
                continue
    return payloads


async def true_counts(db: Database) -> list[TrueTable]:
    """Every table of the catalogue, as counted before disclosure control."""
    scope = Scope(start=date(2026, 1, 1), end=date(2026, 12, 31), known_on=utcnow())
    tables = [(spec, breakdown(spec, None)) for spec in CATALOGUE.values()]
    async with db.session(write=False) as session:
        return await count_tables(session, tables=tables, scope=scope)


def _cells(tables: list[TrueTable]) -> list[tuple[Any, ...]]:
    return [(t.code, dict(t.cells), t.total, dict(t.excluded), dict(t.measures)) for t in tables]


async def test_erased_person_is_in_no_answer_dump_or_log_and_statistics_do_not_change(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    w = world
    keyring = Keyring(w.settings)
    walked = await walk_the_pathway(w)
    case, police, mimp = walked["case"], walked["police"], walked["mimp"]
    person_id = case["person_id"]
    admin = await w.factory.user("MIMP", Role.admin)
    analyst = await w.factory.user("MIMP", Role.analyst)
    ids = {
        "case_id": case["id"],
        "consent_id": walked["consent_id"],
        "referral_id": walked["referral_id"],
        "code": "V1",
    }
    readers = [admin, police, mimp, analyst]

    # Before: the answers hold her name (the walk would see it), the master key opens every
    # text sealed for her, and she is counted.
    assert set(found_in(await every_answer(w, readers, ids))) >= set(NEEDLES)
    before_opened = await opened(w.db, keyring, person_id)
    # The identity, where she is now, the screening's notes, the referral's reason (on the
    # referral and on its dated status change), the closing note.
    assert len(before_opened) == 6
    assert {"current_location": f"Casa de su tía, {GIVEN} {FAMILY}'s aunt, Puerto Maldonado"} in (
        before_opened
    )
    assert any(p.get("given_name") == GIVEN for p in before_opened)
    counted_before = await true_counts(w.db)
    assert next(t for t in counted_before if t.code == "V1").total == 1
    published_before = await _ok(
        await w.client.get("/v1/stats/tables/V1", params={"year": 2026}, headers=analyst.headers)
    )

    # Her data key as wrapped, and her identity records, as the database file holds them.
    deleted = await _bytes_deleted_by_erasure(w.db, person_id)
    assert deleted

    erase = {
        "legal_basis": "data_subject_request",
        "justification": f"Written request of {GIVEN} {FAMILY}, file MIMP-2026-0042",
    }
    response = await w.client.post(
        f"/v1/persons/{person_id}/erase", json=erase, headers=admin.headers
    )
    first = await _ok(response)
    again = await _ok(
        await w.client.post(f"/v1/persons/{person_id}/erase", json=erase, headers=admin.headers)
    )

    assert first == again
    assert first["legal_basis"] == "data_subject_request"
    assert first["person_records"] == 1
    assert first["erased_by"] == str(admin.actor.user_id)
    # Her identifying data is gone, and the case says so plainly.
    gone = await w.client.get(f"/v1/cases/{case['id']}/person", headers=police.headers)
    assert gone.status_code == 410, gone.text
    assert gone.json()["code"] == "person_erased"
    # No answer, to anyone, holds her name or document; the case no longer says where she is.
    assert found_in(await every_answer(w, readers, ids)) == []
    shown = await _ok(await w.client.get(f"/v1/cases/{case['id']}", headers=police.headers))
    assert shown["current_location"] is None
    # Nor the database, dumped whole.
    assert found_in(await full_dump(w.settings)) == []
    if w.settings.is_sqlite:
        # Nor the file's free space: what erasure deleted is overwritten (secure_delete).
        raw = await raw_database_file(w.settings)
        assert [blob for blob in deleted if blob in raw] == []
    # Nor the logs.
    captured = capfd.readouterr()
    assert found_in(caplog.text + captured.out + captured.err) == []
    # The texts sealed for her are still there, and the master key opens none of them.
    assert len(await sealed_blobs(w.db)) >= 3
    assert await opened(w.db, keyring, person_id) == []
    # The statistics count her exactly as before.
    assert _cells(await true_counts(w.db)) == _cells(counted_before)
    published_after = await _ok(
        await w.client.get("/v1/stats/tables/V1", params={"year": 2026}, headers=analyst.headers)
    )
    assert published_after["cells"] == published_before["cells"]
    # One audit event, with the legal basis and nothing that identifies her.
    events = await _ok(
        await w.client.get(
            "/v1/audit/events", params={"action": "person.erased"}, headers=admin.headers
        )
    )
    [event] = events["items"]
    assert event["entity_id"] == person_id
    assert event["changes"]["legal_basis"] == {"to": "data_subject_request"}
    assert found_in(str(event)) == []


async def test_the_same_document_after_erasure_is_a_new_person(world: World) -> None:
    w = world
    police = await w.factory.user("PNP", Role.identifier)
    admin = await w.factory.user("MIMP", Role.admin)
    person = person_body(document={"type": "passport", "number": "QZ5RW22"})
    first = await _ok(
        await w.client.post("/v1/cases", json=case_body(person=person), headers=police.headers),
        201,
    )
    await _ok(
        await w.client.post(
            f"/v1/persons/{first['person_id']}/erase",
            json={"legal_basis": "recorded_in_error", "justification": "entered twice by mistake"},
            headers=admin.headers,
        )
    )

    second = await _ok(
        await w.client.post("/v1/cases", json=case_body(person=person), headers=police.headers),
        201,
    )

    # Nothing of the erased person is left to recognize her by: a new person.
    assert second["person_id"] != first["person_id"]
    assert second["possible_duplicates"] == []
    shown = await _ok(
        await w.client.get(f"/v1/cases/{second['id']}/person", headers=police.headers)
    )
    assert shown["document"] == {"type": "passport", "number": "QZ5RW22"}


async def test_erasing_a_person_erases_the_records_linked_with_her(world: World) -> None:
    w = world
    police = await w.factory.user("PNP", Role.identifier)
    admin = await w.factory.user("MIMP", Role.admin)
    who = {"given_name": "Luz", "family_name": "Condori", "birth_date": "2008-09-30"}
    first = await _ok(
        await w.client.post(
            "/v1/cases",
            json=case_body(person=person_body(**who, age_estimate=None)),
            headers=police.headers,
        ),
        201,
    )
    second = await _ok(
        await w.client.post(
            "/v1/cases",
            json=case_body(person=person_body(**who, age_estimate=None)),
            headers=police.headers,
        ),
        201,
    )
    read = await w.client.get(f"/v1/cases/{second['id']}", headers=police.headers)
    await _ok(
        await w.client.post(
            f"/v1/cases/{second['id']}/person/link",
            json={"person_id": first["person_id"]},
            headers={**police.headers, "If-Match": read.headers["ETag"]},
        )
    )

    # Named by the record that was linked away, the erasure reaches the one it joined.
    erased = await _ok(
        await w.client.post(
            f"/v1/persons/{second['person_id']}/erase",
            json={
                "legal_basis": "court_order",
                "justification": "order of the court, exp. 12-2026",
            },
            headers=admin.headers,
        )
    )

    assert erased["person_records"] == 2
    for case in (first, second):
        gone = await w.client.get(f"/v1/cases/{case['id']}/person", headers=police.headers)
        assert gone.json()["code"] == "person_erased"
    [(keys,)] = await query(w.db, "SELECT count(*) FROM person_key")
    [(indexes,)] = await query(w.db, "SELECT count(*) FROM person_blind_index")
    [(identities,)] = await query(w.db, "SELECT count(*) FROM person_identity")
    assert (keys, indexes, identities) == (0, 0, 0)


async def test_no_text_can_be_sealed_for_an_erased_person(world: World) -> None:
    w = world
    police = await w.factory.user("PNP", Role.identifier)
    admin = await w.factory.user("MIMP", Role.admin)
    case = await _ok(
        await w.client.post("/v1/cases", json=case_body(), headers=police.headers), 201
    )
    await _ok(
        await w.client.post(
            f"/v1/persons/{case['person_id']}/erase",
            json={"legal_basis": "data_subject_request", "justification": "request 2026-77"},
            headers=admin.headers,
        )
    )

    with_note = await w.client.post(
        f"/v1/cases/{case['id']}/screenings",
        json={"victim_status": "confirmed", "notes": "she said more"},
        headers=police.headers,
    )
    without = await w.client.post(
        f"/v1/cases/{case['id']}/screenings",
        json={"victim_status": "confirmed"},
        headers=police.headers,
    )

    read = await w.client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    located = await w.client.patch(
        f"/v1/cases/{case['id']}",
        json={"current_location": "Albergue Santa Rosa"},
        headers={**police.headers, "If-Match": read.headers["ETag"]},
    )

    assert with_note.status_code == 410, with_note.text
    assert with_note.json()["code"] == "person_erased"
    assert located.status_code == 410, located.text
    assert located.json()["code"] == "person_erased"
    # The case goes on without her identity (and without where she was: unreadable now).
    assert without.status_code == 201, without.text
    assert read.json()["current_location"] is None


async def test_erasure_needs_a_justification_and_an_administrator(world: World) -> None:
    w = world
    police = await w.factory.user("PNP", Role.identifier)
    admin = await w.factory.user("MIMP", Role.admin)
    case = await _ok(
        await w.client.post("/v1/cases", json=case_body(), headers=police.headers), 201
    )
    path = f"/v1/persons/{case['person_id']}/erase"

    bare = await w.client.post(path, json={"legal_basis": "court_order"}, headers=admin.headers)
    system_basis = await w.client.post(
        path,
        json={"legal_basis": "retention_period_ended", "justification": "it is old enough"},
        headers=admin.headers,
    )
    by_police = await w.client.post(
        path,
        json={"legal_basis": "court_order", "justification": "order of the court 1-2026"},
        headers=police.headers,
    )
    unknown = await w.client.post(
        f"/v1/persons/{uuid.uuid4()}/erase",
        json={"legal_basis": "court_order", "justification": "order of the court 1-2026"},
        headers=admin.headers,
    )

    assert bare.status_code == 422
    assert [e["field"] for e in bare.json()["errors"]] == ["justification"]
    assert system_basis.status_code == 422
    assert by_police.status_code == 403
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "person_not_found"
    still = await w.client.get(f"/v1/cases/{case['id']}/person", headers=police.headers)
    assert still.status_code == 200
