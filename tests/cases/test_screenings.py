"""Screenings: notes sealed under the person's key, read back only by the screening
organization, every read audited."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, create_case, person_body


async def _screen(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, notes: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"victim_status": "confirmed"}
    if notes is not None:
        body["notes"] = notes
    response = await client.post(f"/v1/cases/{case_id}/screenings", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _screenings(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/cases/{case_id}/screenings", headers=user.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def _involve_by_referral(
    client: httpx.AsyncClient, sender: SignedInUser, receiver: SignedInUser, case_id: str
) -> None:
    org = receiver.actor.organization_code
    consent = await client.post(
        f"/v1/cases/{case_id}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": [org], "language": "es"},
        headers=sender.headers,
    )
    assert consent.status_code == 201, consent.text
    referral = await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": org, "purpose": "protection_services"},
        headers=sender.headers,
    )
    accepted = await client.post(
        f"/v1/referrals/{referral.json()['id']}/accept", headers=receiver.headers
    )
    assert accepted.status_code == 200, accepted.text


async def test_the_screening_organization_reads_its_notes_back_and_others_do_not(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    by_police = await _screen(client, police, case["id"], "Relata deuda con el dueño del bar")
    await _involve_by_referral(client, police, mimp, case["id"])
    by_mimp = await _screen(client, mimp, case["id"], None)

    seen_by_police = {s["id"]: s for s in await _screenings(client, police, case["id"])}
    seen_by_mimp = {s["id"]: s for s in await _screenings(client, mimp, case["id"])}

    assert list(seen_by_police) == [by_police["id"], by_mimp["id"]]
    assert seen_by_police[by_police["id"]]["notes"] == "Relata deuda con el dueño del bar"
    assert seen_by_police[by_police["id"]]["has_notes"] is True
    assert seen_by_police[by_police["id"]]["organization"] == "PNP"
    assert seen_by_police[by_mimp["id"]]["has_notes"] is False
    # MIMP sees that PNP screened, and what it decided, but not PNP's notes.
    assert seen_by_mimp[by_police["id"]]["victim_status"] == "confirmed"
    assert seen_by_mimp[by_police["id"]]["has_notes"] is True
    assert seen_by_mimp[by_police["id"]]["notes"] is None
    assert "Relata" not in json.dumps(seen_by_mimp)


async def test_an_organization_not_involved_gets_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    outsider = await factory.user("MINEDU", Role.caseworker)
    case = await create_case(client, police)
    await _screen(client, police, case["id"], "Nota reservada")

    response = await client.get(f"/v1/cases/{case['id']}/screenings", headers=outsider.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "case_not_found"


async def test_each_read_of_notes_is_audited_without_the_notes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    auditor = await factory.user("MIMP", Role.auditor)
    case = await create_case(client, police)
    screening = await _screen(client, police, case["id"], "Vive en Jr. Ayacucho 481")
    await _involve_by_referral(client, police, mimp, case["id"])

    await _screenings(client, police, case["id"])
    await _screenings(client, police, case["id"])
    await _screenings(client, mimp, case["id"])  # no notes opened: nothing to audit

    events = (
        await client.get(
            "/v1/audit/events",
            params={"entity_type": "screening", "entity_id": screening["id"]},
            headers=auditor.headers,
        )
    ).json()["items"]
    assert [(e["action"], e["actor_user_id"]) for e in events] == [
        ("screening.notes_viewed", str(police.actor.user_id))
    ] * 2
    assert events[0]["changes"] == {"case_id": {"to": case["id"]}}
    assert "Ayacucho" not in json.dumps(events)


async def test_notes_stay_readable_after_the_person_is_linked_to_an_earlier_record(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    who = {
        "given_name": "Lucía",
        "family_name": f"Mamani {uuid.uuid4().hex[:8]}",
        "birth_date": "2008-09-30",
        "age_estimate": None,
        "document": None,
    }
    first = await create_case(client, police, person=person_body(**who))
    second = await create_case(
        client, ngo, region="08", context="ngo_outreach", person=person_body(**who)
    )
    screening = await _screen(client, ngo, second["id"], "Llegó desde Cusco en bus")
    linked = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers=ngo.headers,
    )
    assert linked.status_code == 200, linked.text

    [seen] = await _screenings(client, ngo, second["id"])

    assert seen["id"] == screening["id"]
    assert seen["notes"] == "Llegó desde Cusco en bus"


async def test_notes_are_never_in_clear_in_the_database(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    marker = f"Marcador-{uuid.uuid4().hex}"
    await _screen(client, police, case["id"], f"{marker} dice que la retienen en Huepetuhe")
    assert (await _screenings(client, police, case["id"]))[0]["notes"].startswith(marker)

    tables = [
        t
        for (t,) in await query(
            db,
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if db.dialect == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        )
    ]
    dump = []
    for table in tables:
        for row in await query(db, f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the catalogue
            dump.append(
                " ".join(
                    v.hex() if isinstance(v, bytes | memoryview) else json.dumps(v, default=str)
                    for v in row
                )
            )
    text = "\n".join(dump)

    assert marker not in text
    assert marker.encode().hex() not in text
