"""Closing and reopening cases: the state machine through HTTP."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from fastapi import FastAPI

from service.core.db import Database
from service.identity.rules import Role
from service.persons import service as person_service
from tests.support.databases import query
from tests.support.factories import Factory, create_case


async def _transition(
    client: httpx.AsyncClient, headers: dict[str, str], case_id: str, to: str, reason: str
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/transitions", json={"to": to, "reason": reason}, headers=headers
    )


async def test_closing_a_closed_case_is_409_listing_what_is_allowed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    assert (
        await _transition(client, police.headers, case["id"], "closed", "lost_contact")
    ).status_code == 201

    again = await _transition(client, police.headers, case["id"], "closed", "lost_contact")

    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "illegal_transition"
    assert {a["to"] for a in problem["allowed"]} == {"identified", "in_care"}
    assert "re_trafficked" in problem["allowed"][0]["reasons"]


@pytest.mark.parametrize("reason", ["reintegrated", "repatriated"])
async def test_outcomes_of_care_cannot_close_a_case_never_in_care(
    client: httpx.AsyncClient, factory: Factory, reason: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    response = await _transition(client, police.headers, case["id"], "closed", reason)

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert response.json()["allowed"] == [
        {
            "to": "closed",
            "reasons": [
                "deceased",
                "declined_services",
                "lost_contact",
                "not_a_victim",
                "transferred",
            ],
        }
    ]
    assert (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()[
        "status"
    ] == "identified"


async def test_not_a_victim_needs_the_screening_that_found_so(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    early = await _transition(client, police.headers, case["id"], "closed", "not_a_victim")
    await client.post(
        f"/v1/cases/{case['id']}/screenings",
        json={"victim_status": "not_a_victim"},
        headers=police.headers,
    )
    after = await _transition(client, police.headers, case["id"], "closed", "not_a_victim")

    assert early.status_code == 409
    assert early.json()["code"] == "illegal_transition"
    assert after.status_code == 201


async def test_moves_to_referred_or_in_care_are_not_requested_by_hand(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    response = await _transition(client, police.headers, case["id"], "in_care", "reintegrated")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"


async def test_reopening_needs_a_reason_and_goes_back_to_identified_or_in_care(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _transition(client, police.headers, case["id"], "closed", "lost_contact")

    no_reason = await _transition(client, police.headers, case["id"], "identified", "because")
    to_referred = await _transition(client, police.headers, case["id"], "referred", "re_trafficked")
    reopened = await _transition(client, police.headers, case["id"], "identified", "re_trafficked")
    view = (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()

    assert no_reason.status_code == to_referred.status_code == 409
    assert no_reason.json()["code"] == to_referred.json()["code"] == "illegal_transition"
    assert reopened.status_code == 201
    assert view["status"] == "identified"
    history = (
        await client.get(f"/v1/cases/{case['id']}/transitions", headers=police.headers)
    ).json()
    assert [(t["from_status"], t["to_status"], t["reason"]) for t in history] == [
        ("identified", "closed", "lost_contact"),
        ("closed", "identified", "re_trafficked"),
    ]


async def test_a_transition_note_is_stored_encrypted_never_in_clear(
    client: httpx.AsyncClient, factory: Factory, db: Database, app: FastAPI
) -> None:
    police = await factory.user("PNP", Role.identifier)
    auditor = await factory.user("PNP", Role.auditor)
    case = await create_case(client, police)
    note = f"Se fue con su tía a Juliaca {uuid.uuid4().hex}"

    closed = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact", "note": note},
        headers=police.headers,
    )
    assert closed.status_code == 201, closed.text
    plain = await _transition(client, police.headers, case["id"], "identified", "new_information")
    history = (
        await client.get(f"/v1/cases/{case['id']}/transitions", headers=police.headers)
    ).json()

    assert [t["has_note"] for t in history] == [True, False]
    assert plain.json()["has_note"] is False
    [(sealed,)] = await query(
        db,
        "SELECT note_ciphertext FROM case_transition WHERE id = :id",
        id=closed.json()["id"]
        if db.dialect == "postgresql"
        else closed.json()["id"].replace("-", ""),
    )
    assert note.encode() not in bytes(sealed)
    async with db.session() as session:
        opened = await person_service.open_for_person(
            session,
            keyring=app.state.security.keyring,
            person_id=uuid.UUID(case["person_id"]),
            sealed=bytes(sealed),
        )
    assert opened == {"note": note}
    events = (
        await client.get(
            "/v1/audit/events",
            params={"entity_id": case["id"], "action": "case.transitioned"},
            headers=auditor.headers,
        )
    ).json()["items"]
    assert events[-1]["changes"]["note"] == {"changed": True}
    assert note not in json.dumps(events)
