"""Repatriations through HTTP: a Peruvian exploited abroad comes home and continues on the
national pathway; a foreign national returns to her country only with consent and never
while her asylum claim is pending or recognized, and her arrival closes the case."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.core.db import Database
from service.identity.rules import Role
from tests.legal.helpers import audit_actions, put_in_care
from tests.repatriation.helpers import (
    abroad_body,
    abroad_case,
    arrive,
    claim,
    consent,
    foreign_body,
    foreign_case,
    home_body,
    plan,
    rows_of_case,
)
from tests.support.factories import (
    Factory,
    SignedInUser,
    create_case,
    create_facility,
    refer_for_shelter,
)

RETURN = {"direction": "to_country_of_origin"}


async def _case(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/cases/{case_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def _decision_region(db: Database, case_id: str) -> str:
    stmt = sa.text(
        "SELECT inputs FROM allocation_decision WHERE case_id = :id ORDER BY decided_at DESC"
    ).bindparams(sa.bindparam("id", type_=sa.Uuid()))
    async with db.engine.connect() as conn:
        inputs = (await conn.execute(stmt, {"id": uuid.UUID(case_id)})).first()
    assert inputs is not None
    data = inputs[0] if isinstance(inputs[0], dict) else json.loads(inputs[0])
    region: str = data["region"]
    return region


# To Peru


async def test_consulate_brings_a_peruvian_home_and_mimp_continues_the_case_in_piura(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await abroad_case(client, consulate)
    before = await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)

    planned = await plan(client, consulate, case["id"], **home_body())
    seen_by_mimp = await client.get(
        f"/v1/repatriations/{planned.json()['id']}", headers=mimp.headers
    )
    arrived = await arrive(client, mimp, planned.json()["id"], arrived_on="2026-04-03")
    # Receiving her is not allocating a bed: the consulate refers her for shelter too.
    await refer_for_shelter(client, consulate, mimp, case["id"])
    placement = await client.post(
        f"/v1/cases/{case['id']}/placements", json={}, headers=mimp.headers
    )
    listed = await client.get(f"/v1/cases/{case['id']}/repatriations", headers=consulate.headers)

    assert before.status_code == 404
    assert planned.status_code == 201, planned.text
    assert planned.json() | {"id": None, "recorded_at": None} == {
        "id": None,
        "case_id": case["id"],
        "direction": "to_peru",
        "country": "ARG",
        "consulate": "RREE",
        "receiving_organization": "MIMP",
        "arrival_region": "20",
        "travel_on": "2026-04-02",
        "status": "planned",
        "organization": "RREE",
        "recorded_at": None,
        "travelled_on": None,
        "arrived_on": None,
        "cancelled_at": None,
        "cancel_reason": None,
    }
    assert seen_by_mimp.status_code == 200
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["status"] == "arrived"
    assert (arrived.json()["travelled_on"], arrived.json()["arrived_on"]) == (
        "2026-04-02",
        "2026-04-03",
    )
    assert (await _case(client, mimp, case["id"]))["status"] != "closed"
    assert placement.status_code in {201, 202}, placement.text
    assert await _decision_region(db, case["id"]) == "20"
    assert [r["status"] for r in listed.json()] == ["arrived"]
    actions = await audit_actions(db, case["id"])
    assert actions.count("repatriation.planned") == actions.count("repatriation.arrived") == 1
    assert "case.involvement_started" in actions[actions.index("repatriation.planned") :]


async def test_the_country_of_exploitation_is_checked_against_the_identifications(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)

    wrong = await plan(client, consulate, case["id"], **home_body(country="CHL"))
    named = await plan(client, consulate, case["id"], **home_body(country="ARG"))

    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["country"]
    assert named.status_code == 201, named.text


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (home_body(receiving_organization=None), "receiving_organization", "invalid_repatriation"),
        (home_body(consulate=None), "consulate", "invalid_repatriation"),
        (home_body(arrival_region=None), "arrival_region", "invalid_repatriation"),
        (home_body(arrival_region="99"), "arrival_region", "invalid_input"),
        (
            home_body(receiving_organization="NOPE"),
            "receiving_organization",
            "unknown_organization",
        ),
    ],
    ids=["no_receiver", "no_consulate", "no_region", "unknown_region", "unknown_org"],
)
async def test_a_repatriation_to_peru_names_its_consulate_receiver_and_region(
    client: httpx.AsyncClient,
    factory: Factory,
    db: Database,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)

    response = await plan(client, consulate, case["id"], **body)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await rows_of_case(db, "repatriation", case["id"]) == 0


async def test_only_a_peruvian_exploited_abroad_is_repatriated_to_peru(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    consulate = await factory.user("RREE", Role.identifier)
    at_home = await create_case(client, police)
    foreigner = await foreign_case(client, police)
    foreigner_abroad = await create_case(
        client, consulate, **abroad_body(region=None, person=foreign_body()["person"])
    )

    answers = [
        await plan(client, police, at_home["id"], **home_body()),
        await plan(client, police, foreigner["id"], **home_body()),
        await plan(client, consulate, foreigner_abroad["id"], **home_body()),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (409, "not_a_peruvian_exploited_abroad")
    ] * 3


async def test_one_planned_repatriation_at_a_time(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)

    first = await plan(client, consulate, case["id"], **home_body())
    second = await plan(client, consulate, case["id"], **home_body(arrival_region="15"))
    cancelled = await client.post(
        f"/v1/repatriations/{first.json()['id']}/cancel",
        json={"reason": "travel_not_possible"},
        headers=consulate.headers,
    )
    third = await plan(client, consulate, case["id"], **home_body(arrival_region="15"))

    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (409, "repatriation_already_planned")
    assert cancelled.status_code == 200, cancelled.text
    assert third.status_code == 201, third.text


async def test_cancelling_ends_the_receivers_involvement_and_cannot_be_undone(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await abroad_case(client, consulate)
    planned = (await plan(client, consulate, case["id"], **home_body())).json()
    url = f"/v1/repatriations/{planned['id']}"

    cancelled = await client.post(
        f"{url}/cancel", json={"reason": "person_declined"}, headers=consulate.headers
    )
    mimp_after = await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)
    again = await client.post(
        f"{url}/cancel", json={"reason": "person_declined"}, headers=consulate.headers
    )
    arrival = await arrive(client, consulate, planned["id"])
    caller_asylum_reason = await client.post(
        f"{url}/cancel", json={"reason": "asylum_claim"}, headers=consulate.headers
    )

    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "person_declined",
    )
    assert cancelled.json()["cancelled_at"] is not None
    assert mimp_after.status_code == 404
    assert (again.status_code, again.json()["code"]) == (409, "repatriation_not_planned")
    assert (arrival.status_code, arrival.json()["code"]) == (409, "repatriation_not_planned")
    assert caller_asylum_reason.status_code == 422
    actions = await audit_actions(db, case["id"])
    assert actions.count("repatriation.cancelled") == 1
    assert "case.involvement_ended" in actions


async def test_an_arrival_before_the_travel_day_needs_the_real_travel_day(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)
    planned = (await plan(client, consulate, case["id"], **home_body())).json()

    early = await arrive(client, consulate, planned["id"], arrived_on="2026-03-30")
    moved = await arrive(
        client, consulate, planned["id"], arrived_on="2026-03-30", travelled_on="2026-03-29"
    )

    assert early.status_code == 422
    assert [e["field"] for e in early.json()["errors"]] == ["arrived_on"]
    assert moved.status_code == 200, moved.text
    assert (moved.json()["travel_on"], moved.json()["travelled_on"]) == ("2026-04-02", "2026-03-29")


# To the country of origin


async def test_a_return_needs_the_persons_consent_naming_repatriation(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["services"])

    without = await plan(client, police, case["id"], **RETURN)
    await consent(client, police, case["id"], ["repatriation"])
    with_consent = await plan(client, police, case["id"], **RETURN)

    assert (without.status_code, without.json()["code"]) == (409, "consent_required")
    assert with_consent.status_code == 201, with_consent.text
    assert with_consent.json()["country"] == "VEN"
    assert with_consent.json()["consulate"] is None
    assert with_consent.json()["receiving_organization"] is None
    assert (await audit_actions(db, case["id"])).count("repatriation.planned") == 1


@pytest.mark.parametrize("status", ["pending", "recognized"])
async def test_non_refoulement_no_return_while_the_claim_is_pending_or_recognized(
    client: httpx.AsyncClient, factory: Factory, db: Database, status: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])
    await claim(client, police, case["id"], status, "2026-03-20")

    refused = await plan(client, police, case["id"], **RETURN)

    assert refused.status_code == 409
    assert refused.json()["code"] == "non_refoulement"
    assert refused.json()["asylum_claim"] == status
    assert await rows_of_case(db, "repatriation", case["id"]) == 0
    assert "repatriation.planned" not in await audit_actions(db, case["id"])


async def test_after_a_rejected_claim_the_return_may_be_planned(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])
    await claim(client, police, case["id"], "pending", "2026-03-20")
    await claim(client, police, case["id"], "rejected", "2026-03-25")

    planned = await plan(client, police, case["id"], **RETURN)

    assert planned.status_code == 201, planned.text


async def test_a_claim_lodged_while_a_return_is_planned_cancels_the_return(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])
    planned = (await plan(client, police, case["id"], **RETURN)).json()

    lodged = await claim(client, police, case["id"], "pending", "2026-03-28")
    repatriation = await client.get(f"/v1/repatriations/{planned['id']}", headers=police.headers)
    arrival = await arrive(client, police, planned["id"])

    assert lodged.status_code == 201
    assert repatriation.json()["status"] == "cancelled"
    assert repatriation.json()["cancel_reason"] == "asylum_claim"
    assert (arrival.status_code, arrival.json()["code"]) == (409, "repatriation_not_planned")
    assert (await _case(client, police, case["id"]))["status"] != "closed"
    actions = await audit_actions(db, case["id"])
    assert actions.index("asylum_claim.recorded") < actions.index("repatriation.cancelled")


async def test_the_arrival_home_closes_the_case_frees_the_bed_and_cancels_referrals(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    admin = await factory.user("MIMP", Role.admin)
    facility = await create_facility(
        client,
        admin,
        region="15",
        genders=["female"],
        exploitation_forms=["forced_marriage"],
        nationalities=["VEN"],
        capacity=1,
    )
    marriage = [{"form": "forced_marriage"}]
    case = await create_case(client, police, **foreign_body(exploitation=marriage))
    await consent(
        client, police, case["id"], ["services", "data_sharing", "repatriation"], ["MIMP"]
    )
    await put_in_care(client, police, case["id"])
    # MIMP, accepting her for shelter, places her in its facility.
    mimp = await factory.user("MIMP", Role.caseworker)
    shelter = await client.post(
        f"/v1/cases/{case['id']}/referrals",
        json={"to_org": "MIMP", "purpose": "shelter"},
        headers=police.headers,
    )
    await client.post(f"/v1/referrals/{shelter.json()['id']}/accept", headers=mimp.headers)
    placed = await client.post(
        f"/v1/cases/{case['id']}/placements",
        json={"facility_id": facility["id"]},
        headers=mimp.headers,
    )
    referral = await client.post(
        f"/v1/cases/{case['id']}/referrals",
        json={"to_org": "MIMP", "purpose": "reintegration"},
        headers=police.headers,
    )
    planned = (await plan(client, police, case["id"], **RETURN, country="COL")).json()

    arrived = await arrive(client, police, planned["id"], arrived_on="2026-04-04")

    assert placed.status_code == 201, placed.text
    assert referral.status_code == 201, referral.text
    assert arrived.status_code == 200, arrived.text
    assert (arrived.json()["status"], arrived.json()["country"]) == ("arrived", "COL")
    view = await _case(client, police, case["id"])
    assert view["status"] == "closed"
    transitions = await client.get(f"/v1/cases/{case['id']}/transitions", headers=police.headers)
    last = transitions.json()[-1]
    assert (last["from_status"], last["to_status"], last["reason"], last["trigger"]) == (
        "in_care",
        "closed",
        "repatriated",
        "repatriated",
    )
    bed = await client.get(f"/v1/facilities/{facility['id']}", headers=admin.headers)
    assert bed.json()["available"] == 1
    outbox = await client.get(
        "/v1/referrals",
        params={"direction": "outgoing", "case_id": case["id"]},
        headers=police.headers,
    )
    assert {r["purpose"]: r["status"] for r in outbox.json()["items"]} == {
        "reintegration": "cancelled",
        "shelter": "accepted",
    }
    actions = await audit_actions(db, case["id"])
    tail = actions[actions.index("repatriation.arrived") :]
    assert tail[:2] == ["repatriation.arrived", "case.transitioned"]
    assert {"placement.case_closed", "referral.cancelled"} <= set(tail)


async def test_a_case_never_in_care_closes_as_repatriated_on_arrival(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])
    planned = (await plan(client, police, case["id"], **RETURN)).json()

    arrived = await arrive(client, police, planned["id"])

    assert arrived.status_code == 200, arrived.text
    view = await _case(client, police, case["id"])
    assert view["status"] == "closed"


async def test_withdrawn_consent_cancels_the_planned_return_and_stops_the_arrival(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    given = await consent(client, police, case["id"], ["repatriation"])
    planned = (await plan(client, police, case["id"], **RETURN)).json()

    revoked = await client.post(f"/v1/consents/{given['id']}/revoke", headers=police.headers)
    repatriation = await client.get(f"/v1/repatriations/{planned['id']}", headers=police.headers)
    arrival = await arrive(client, police, planned["id"])

    assert revoked.status_code == 200, revoked.text
    assert repatriation.json()["status"] == "cancelled"
    assert repatriation.json()["cancel_reason"] == "consent_withdrawn"
    assert (arrival.status_code, arrival.json()["code"]) == (409, "repatriation_not_planned")
    assert (await _case(client, police, case["id"]))["status"] != "closed"
    actions = await audit_actions(db, case["id"])
    assert actions.index("consent.revoked") < actions.index("repatriation.cancelled")


async def test_a_refusal_cancels_the_planned_return_but_another_consent_in_force_keeps_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    refusing = await foreign_case(client, police)
    await consent(client, police, refusing["id"], ["repatriation"])
    refused_plan = (await plan(client, police, refusing["id"], **RETURN)).json()
    kept = await foreign_case(client, police)
    first = await consent(client, police, kept["id"], ["repatriation"])
    await consent(client, police, kept["id"], ["repatriation", "services"])
    kept_plan = (await plan(client, police, kept["id"], **RETURN)).json()

    refusal = await client.post(
        f"/v1/cases/{refusing['id']}/consents",
        json={"refused": True, "language": "es"},
        headers=police.headers,
    )
    revoked = await client.post(f"/v1/consents/{first['id']}/revoke", headers=police.headers)

    assert (refusal.status_code, revoked.status_code) == (201, 200)
    cancelled = await client.get(f"/v1/repatriations/{refused_plan['id']}", headers=police.headers)
    still = await client.get(f"/v1/repatriations/{kept_plan['id']}", headers=police.headers)
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "consent_withdrawn",
    )
    assert still.json()["status"] == "planned"


async def test_no_caller_closes_a_case_as_repatriated_by_hand(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await put_in_care(client, police, case["id"])

    response = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "repatriated"},
        headers=police.headers,
    )

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "/arrival" in response.json()["detail"]


@pytest.mark.parametrize(
    ("person", "code"),
    [({}, "not_a_foreign_national"), ({"nationality": None}, "not_a_foreign_national")],
    ids=["peruvian", "nationality_unknown"],
)
async def test_only_a_known_foreign_national_returns_to_her_country(
    client: httpx.AsyncClient, factory: Factory, person: dict[str, Any], code: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = foreign_body()
    body["person"] = {**body["person"], "nationality": "PER", **person}
    case = await create_case(client, police, **body)
    await consent(client, police, case["id"], ["repatriation"])

    response = await plan(client, police, case["id"], **RETURN)

    assert (response.status_code, response.json()["code"]) == (409, code)


@pytest.mark.parametrize("field", ["consulate", "receiving_organization", "arrival_region"])
async def test_a_return_names_nothing_of_perus_side(
    client: httpx.AsyncClient, factory: Factory, field: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])

    response = await plan(client, police, case["id"], **RETURN, **{field: home_body()[field]})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_closing_the_case_cancels_its_planned_repatriation(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await abroad_case(client, consulate)
    planned = (await plan(client, consulate, case["id"], **home_body())).json()

    closed = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers=consulate.headers,
    )

    assert closed.status_code == 201, closed.text
    after = await client.get(f"/v1/repatriations/{planned['id']}", headers=consulate.headers)
    assert (after.json()["status"], after.json()["cancel_reason"]) == ("cancelled", "case_closed")
    assert (await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)).status_code == 404
    assert "repatriation.cancelled" in await audit_actions(db, case["id"])
