"""Issue 8's end-to-end scenario, through HTTP only: a Peruvian woman identified by the
consulate in Buenos Aires comes home to Lima, gets a bed there, a public defender and a single
interview in a Gesell chamber; her two traffickers are prosecuted in one proceeding, one
convicted to 10 years for trafficking, the other to 3 years for pimping (a reduced charge);
restitution of 20,000 soles is ordered and 5,000 paid. Every step leaves its audit event."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, case_body, create_facility, person_body


async def _call(
    client: httpx.AsyncClient,
    user: SignedInUser,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    expect: int = 201,
) -> Any:
    response = await client.request(method, path, json=body, headers=user.headers)
    assert response.status_code == expect, f"{method} {path}: {response.text}"
    return response.json()


async def test_a_peruvian_woman_exploited_in_buenos_aires_comes_home_and_her_traffickers_are_judged(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    defender = await factory.user("MINJUS", Role.legal_aid)
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    admin = await factory.user("MIMP", Role.admin)
    # A shelter of Lima with a free bed for her (the seeded ones may be full by now).
    lima = await create_facility(
        client,
        admin,
        region="15",
        genders=["female"],
        min_age=18,
        exploitation_forms=["sexual_exploitation"],
    )

    # The consulate in Buenos Aires identifies her: exploited in Argentina, via Bolivia.
    body = case_body(
        exploitation_country="ARG",
        context="consulate_abroad",
        place="Buenos Aires, taller textil de Flores",
        route={"origin": "PER", "transit": ["BOL"], "destination": "ARG"},
        current_location="Consulado General del Perú en Buenos Aires",
        identified_on="2026-03-14",
        person=person_body(given_name="Maribel", age_estimate=24),
    )
    del body["region"]
    case = await _call(client, consulate, "POST", "/v1/cases", body)
    case_id = case["id"]
    assert case["identifications"][0]["exploitation_country"] == "ARG"
    await _call(
        client,
        consulate,
        "POST",
        f"/v1/cases/{case_id}/consents",
        {
            "purposes": ["services", "data_sharing", "statistics"],
            "share_with": ["MIMP", "MINJUS", "MP", "PJ"],
            "language": "es",
        },
    )

    # Repatriated to Lima: MIMP receives her and sees her case from then on.
    trip = await _call(
        client,
        consulate,
        "POST",
        f"/v1/cases/{case_id}/repatriations",
        {
            "direction": "to_peru",
            "consulate": "RREE",
            "receiving_organization": "MIMP",
            "arrival_region": "15",
            "travel_on": "2026-03-20",
        },
    )
    assert (trip["country"], trip["status"]) == ("ARG", "planned")
    arrived = await _call(
        client,
        mimp,
        "POST",
        f"/v1/repatriations/{trip['id']}/arrival",
        {"arrived_on": "2026-03-21"},
        expect=200,
    )
    assert arrived["status"] == "arrived"
    assert (await _call(client, mimp, "GET", f"/v1/cases/{case_id}", expect=200))[
        "status"
    ] != "closed"

    # On the national pathway: the consulate refers her for shelter, MIMP accepts and
    # finds her a bed in Lima, the arrival region.
    shelter = await _call(
        client,
        consulate,
        "POST",
        f"/v1/cases/{case_id}/referrals",
        {"to_org": "MIMP", "purpose": "shelter"},
    )
    await _call(client, mimp, "POST", f"/v1/referrals/{shelter['id']}/accept", expect=200)
    placed = await _call(client, mimp, "POST", f"/v1/cases/{case_id}/placements", {})
    assert placed["outcome"] == "placed", placed
    facility = await _call(
        client, mimp, "GET", f"/v1/facilities/{placed['placement']['facility_id']}", expect=200
    )
    assert facility["region"] == "15"
    assert lima["region"] == "15"

    # A public defender.
    assignment = await _call(
        client,
        mimp,
        "POST",
        f"/v1/cases/{case_id}/legal-aid",
        {"defender_id": str(defender.actor.user_id)},
    )
    assert (assignment["organization"], assignment["active"]) == ("MINJUS", True)

    # MIMP refers her to the prosecutors' victim and witness programme; MP accepts.
    referral = await _call(
        client,
        mimp,
        "POST",
        f"/v1/cases/{case_id}/referrals",
        {"to_org": "MP", "purpose": "victim_witness_programme"},
    )
    await _call(client, prosecutor, "POST", f"/v1/referrals/{referral['id']}/accept", expect=200)

    # Interviewed once, in a Gesell chamber: no repeated-interview alert.
    interview = await _call(
        client,
        prosecutor,
        "POST",
        f"/v1/cases/{case_id}/interviews",
        {
            "conducted_at": (utcnow() - timedelta(days=1)).isoformat(),
            "purpose": "testimony",
            "gesell_chamber": True,
        },
    )
    assert (interview["gesell_chamber"], interview["repeated"]) == (True, False)
    alerts = await _call(
        client, mimp, "GET", f"/v1/alerts?case_id={case_id}&status=open", expect=200
    )
    assert "repeated_interview" not in {a["kind"] for a in alerts["items"]}

    # Her two traffickers, one proceeding.
    proceeding = await _call(
        client,
        prosecutor,
        "POST",
        "/v1/proceedings",
        {
            "complaint_number": f"CF-BA-{uuid.uuid4().hex[:8]}",
            "prosecutor_office": "FISTRAP-LIMA",
            "complaint_filed_on": "2026-04-01",
            "cases": [{"case_id": case_id, "offence_on": "2025-11-01"}],
        },
    )
    pid = proceeding["id"]
    traffickers = [
        await _call(
            client,
            prosecutor,
            "POST",
            f"/v1/proceedings/{pid}/defendants",
            {"charge_filed": "trafficking"},
        )
        for _ in range(2)
    ]
    assert [d["label"] for d in traffickers] == ["D1", "D2"]
    for status, on, extra in (
        ("investigation", "2026-04-10", {}),
        ("prosecution", "2026-05-01", {}),
        ("trial", "2026-06-01", {"court": "PJ"}),
    ):
        await _call(
            client,
            prosecutor,
            "POST",
            f"/v1/proceedings/{pid}/status",
            {"status": status, "effective_on": on, **extra},
            expect=200,
        )
    first = await _call(
        client,
        court,
        "POST",
        f"/v1/defendants/{traffickers[0]['id']}/outcome",
        {
            "outcome": "convicted",
            "outcome_on": "2026-10-01",
            "charge": "trafficking",
            "sentence": {"years": 10, "months": 0},
        },
        expect=200,
    )
    second = await _call(
        client,
        court,
        "POST",
        f"/v1/defendants/{traffickers[1]['id']}/outcome",
        {
            "outcome": "convicted",
            "outcome_on": "2026-10-01",
            "charge": "pimping",
            "sentence": {"years": 3, "months": 0},
        },
        expect=200,
    )
    # 10 years for art. 153 with a victim of 24 on the day of the offence: at the minimum
    # (8) or above. 3 years for pimping, filed as trafficking: a reduced charge.
    assert (first["below_legal_minimum"], first["charge_reduced"]) == (False, False)
    assert (second["below_legal_minimum"], second["charge_reduced"]) == (False, True)
    decided = await _call(
        client,
        court,
        "POST",
        f"/v1/proceedings/{pid}/status",
        {"status": "decided", "effective_on": "2026-10-01"},
        expect=200,
    )
    assert decided["status"] == "decided"

    # Restitution: 20,000 soles ordered, 5,000 paid (reported by her defender).
    order = await _call(
        client,
        court,
        "POST",
        f"/v1/proceedings/{pid}/restitution-orders",
        {"case_id": case_id, "amount_soles": "20000.00", "ordered_on": "2026-10-02"},
    )
    await _call(
        client,
        defender,
        "POST",
        f"/v1/restitution-orders/{order['id']}/payments",
        {"amount_soles": "5000.00", "received_on": "2026-10-20"},
    )
    [restitution] = await _call(
        client, defender, "GET", f"/v1/cases/{case_id}/restitution", expect=200
    )
    assert (
        restitution["amount_soles"],
        restitution["paid_soles"],
        restitution["balance_soles"],
    ) == (
        "20000.00",
        "5000.00",
        "15000.00",
    )

    # What every institution did is in the audit trail.
    actions = {
        action
        for (action,) in await query(
            db, "SELECT action FROM audit_event WHERE entity_id = :id", id=case_id
        )
    }
    assert {
        "case.created",
        "consent.recorded",
        "repatriation.planned",
        "repatriation.arrived",
        "placement.placed",
        "legal_aid.assigned",
        "referral.sent",
        "interview.recorded",
        "proceeding.case_linked",
        "restitution.ordered",
        "restitution.payment_recorded",
    } <= actions, actions
