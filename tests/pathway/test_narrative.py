"""The narrative's path end to end, through HTTP, as the institutions would walk it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from service.core.time import utcnow
from service.identity.rules import Role
from tests.support.factories import Factory, SignedInUser, case_body, person_body


async def _post(
    client: httpx.AsyncClient,
    user: SignedInUser,
    url: str,
    body: dict[str, Any] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=user.headers)
    assert response.status_code == expect, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_girl_found_in_a_mazuko_raid_reaches_care_and_reintegration(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    defender = await factory.user("MINJUS", Role.legal_aid)
    analyst = await factory.user("MIMP", Role.analyst)

    # PNP identifies a 15-year-old girl in a raid in Madre de Dios.
    case = await _post(client, police, "/v1/cases", case_body(region="17"))
    case_id = case["id"]
    assert case["status"] == "identified"
    assert case["person"]["minor"] is True
    assert case["person"]["age_at_identification"] == 15
    assert {"to_org": "MIMP", "purpose": "protection_services"} in case["suggested_referrals"]
    assert {"to_org": "MINJUS", "purpose": "legal_aid"} in case["suggested_referrals"]

    # She is held in a police station: an alert from the first minute.
    custody = await _post(
        client,
        police,
        f"/v1/cases/{case_id}/custody-periods",
        {"place_kind": "police_station", "start": (utcnow() - timedelta(hours=3)).isoformat()},
    )
    alerts = (await client.get("/v1/alerts", headers=police.headers)).json()["items"]
    assert [a["kind"] for a in alerts if a["case_id"] == case_id] == ["minor_in_custody"]
    assert custody["minor"] is True
    assert custody["hours"] >= 3

    # Screened, she consents to services and to sharing with MIMP.
    screening = await _post(
        client,
        police,
        f"/v1/cases/{case_id}/screenings",
        {"victim_status": "confirmed", "notes": "Relata deuda con el dueño del bar"},
    )
    assert screening["organization"] == "PNP"
    await _post(
        client,
        police,
        f"/v1/cases/{case_id}/consents",
        {"purposes": ["services", "data_sharing"], "share_with": ["MIMP"], "language": "es"},
    )

    # Referred to MIMP, which cannot see her case until it accepts.
    referral = await _post(
        client,
        police,
        f"/v1/cases/{case_id}/referrals",
        {"to_org": "MIMP", "purpose": "protection_services"},
    )
    assert referral["status"] == "requested"
    before_accepting = await client.get(f"/v1/cases/{case_id}", headers=mimp.headers)
    assert before_accepting.status_code == 404
    assert before_accepting.json()["code"] == "case_not_found"
    inbox = (await client.get("/v1/referrals", headers=mimp.headers)).json()["items"]
    assert referral["id"] in {r["id"] for r in inbox}
    accepted = await _post(client, mimp, f"/v1/referrals/{referral['id']}/accept", expect=200)
    assert accepted["status"] == "accepted"

    seen_by_mimp = (await client.get(f"/v1/cases/{case_id}", headers=mimp.headers)).json()
    assert seen_by_mimp["status"] == "in_care"
    assert seen_by_mimp["victim_status"] == "confirmed"
    assert set(seen_by_mimp["involved_organizations"]) == {"PNP", "MIMP"}
    assert {"to_org": "MIMP", "purpose": "protection_services"} not in seen_by_mimp[
        "suggested_referrals"
    ]
    person = await client.get(f"/v1/cases/{case_id}/person", headers=mimp.headers)
    assert person.status_code == 200
    assert person.json()["given_name"] == "Rosa"

    # She leaves the police station; MIMP gives psychological care.
    await _post(
        client,
        police,
        f"/v1/custody-periods/{custody['id']}/end",
        {"end": utcnow().isoformat()},
        expect=200,
    )
    assert [
        a
        for a in (await client.get("/v1/alerts", headers=police.headers)).json()["items"]
        if a["case_id"] == case_id
    ] == []
    await _post(
        client,
        mimp,
        f"/v1/cases/{case_id}/assistance",
        {"kind": "psychological", "provided_on": utcnow().date().isoformat()},
    )

    # Closed as reintegrated.
    closed = await _post(
        client, mimp, f"/v1/cases/{case_id}/transitions", {"to": "closed", "reason": "reintegrated"}
    )
    assert closed["from_status"] == "in_care"
    history = (await client.get(f"/v1/cases/{case_id}/transitions", headers=police.headers)).json()
    assert [(t["to_status"], t["trigger"]) for t in history] == [
        ("referred", "referral_sent"),
        ("in_care", "care_started"),
        ("closed", "requested"),
    ]

    # A public defender not involved gets 404; an analyst gets 403.
    by_defender = await client.get(f"/v1/cases/{case_id}", headers=defender.headers)
    by_analyst = await client.get(f"/v1/cases/{case_id}", headers=analyst.headers)
    assert by_defender.status_code == 404
    assert by_defender.json()["code"] == "case_not_found"
    assert by_analyst.status_code == 403
    assert by_analyst.json()["code"] == "forbidden"


async def test_venezuelan_adult_is_suggested_unhcr_and_hidden_from_others(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    analyst = await factory.user("MIMP", Role.analyst)
    body = case_body(
        region="15",
        person=person_body(
            nationality="VEN",
            age_estimate=None,
            birth_date="1994-06-02",
            document={"type": "cedula", "number": "V-21.456.789"},
        ),
    )

    case = await _post(client, police, "/v1/cases", body)

    assert case["person"]["nationality"] == "VEN"
    assert case["person"]["minor"] is False
    assert case["suggested_referrals"][0] == {"to_org": "UNHCR", "purpose": "refugee_procedure"}
    assert {"to_org": "MIMP", "purpose": "protection_services"} not in case["suggested_referrals"]
    by_defender = await client.get(f"/v1/cases/{case['id']}", headers=defender.headers)
    by_analyst = await client.get(f"/v1/cases/{case['id']}", headers=analyst.headers)
    assert by_defender.status_code == 404
    assert by_defender.json()["code"] == "case_not_found"
    assert by_analyst.status_code == 403
    assert by_analyst.json()["code"] == "forbidden"
