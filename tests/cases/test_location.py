"""Where the person is now: sealed under her data key at rest, audited without its text,
returned in clear to the organizations that may read the case, corrected only on a real
change, and still opened once her record was linked into an earlier one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from service.core.db import Database
from service.identity.rules import Role
from service.persons import service as person_service
from tests.support.databases import query
from tests.support.factories import Factory, create_case, patch_case, person_body

# Letters no rendering of random bytes spells by chance.
WHERE = "Casa de la tía Zoraida Huamanchumo, Jr. Los Pinos 12"


async def _events(db: Database, case_id: str, action: str) -> list[dict[str, Any]]:
    rows = await query(
        db,
        "SELECT changes FROM audit_event WHERE entity_id = :id AND action = :action"
        " ORDER BY occurred_at",
        id=case_id,
        action=action,
    )
    return [c if isinstance(c, dict) else json.loads(c) for (c,) in rows]


async def _sealed(db: Database, case_id: str) -> bytes | None:
    [(sealed,)] = await query(
        db,
        "SELECT current_location_ciphertext FROM case_file WHERE id = :id",
        id=case_id if db.dialect == "postgresql" else case_id.replace("-", ""),
    )
    return None if sealed is None else bytes(sealed)


async def test_the_location_is_stored_sealed_shown_in_clear_and_audited_without_its_text(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)

    case = await create_case(client, police, current_location=WHERE)

    assert case["current_location"] == WHERE
    read = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert read.json()["current_location"] == WHERE
    sealed = await _sealed(db, case["id"])
    assert sealed is not None
    assert b"Zoraida" not in sealed
    async with db.session() as session:
        opened = await person_service.open_for_person(
            session,
            keyring=app.state.security.keyring,
            person_id=uuid.UUID(case["person_id"]),
            sealed=sealed,
        )
    assert opened == {"current_location": WHERE}
    [created] = await _events(db, case["id"], "case.created")
    assert created["current_location"] == {"changed": True}
    assert "Zoraida" not in json.dumps(await _events(db, case["id"], "case.created"))


async def test_a_case_without_location_stores_and_audits_none(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)

    case = await create_case(client, police, current_location=None)

    assert case["current_location"] is None
    assert await _sealed(db, case["id"]) is None
    [created] = await _events(db, case["id"], "case.created")
    assert "current_location" not in created


async def test_correcting_to_the_same_location_is_no_change_and_a_new_one_is_audited_once(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police, current_location="Albergue Santa Rosa")
    sealed_before = await _sealed(db, case["id"])

    same = await patch_case(client, police, case["id"], {"current_location": "Albergue Santa Rosa"})

    assert same.status_code == 200, same.text
    assert same.json()["current_location"] == "Albergue Santa Rosa"
    # Opened and compared: the same text is no correction, the sealed text is left as it was
    # (sealing it again would give other bytes).
    assert await _events(db, case["id"], "case.updated") == []
    assert await _sealed(db, case["id"]) == sealed_before

    moved = await patch_case(client, police, case["id"], {"current_location": WHERE})
    cleared = await patch_case(client, police, case["id"], {"current_location": None})
    again = await patch_case(client, police, case["id"], {"current_location": None})

    assert [moved.status_code, cleared.status_code, again.status_code] == [200, 200, 200]
    assert moved.json()["current_location"] == WHERE
    assert cleared.json()["current_location"] is None
    assert await _sealed(db, case["id"]) is None
    assert await _events(db, case["id"], "case.updated") == [
        {"current_location": {"changed": True}},
        {"current_location": {"changed": True}},
    ]
    read = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert read.json()["current_location"] is None


async def test_a_location_sealed_before_the_person_was_linked_is_still_shown(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    who = {"given_name": "Luz", "family_name": "Mamani", "birth_date": "2008-09-30"}
    first = await create_case(client, police, person=person_body(**who, age_estimate=None))
    second = await create_case(
        client, police, person=person_body(**who, age_estimate=None), current_location=WHERE
    )
    read = await client.get(f"/v1/cases/{second['id']}", headers=police.headers)

    linked = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers={**police.headers, "If-Match": read.headers["ETag"]},
    )

    # The text was sealed for the record linked away; the case now names the earlier one.
    assert linked.status_code == 200, linked.text
    assert linked.json()["person_id"] == first["person_id"]
    assert linked.json()["current_location"] == WHERE
    after = await client.get(f"/v1/cases/{second['id']}", headers=police.headers)
    assert after.json()["current_location"] == WHERE
    # And a correction compares with it, opened the same way.
    same = await patch_case(client, police, second["id"], {"current_location": WHERE})
    assert same.status_code == 200, same.text
    assert same.json()["current_location"] == WHERE
