"""Placements through HTTP: outcomes, the waitlist, holds, history and private addresses."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.audit import service as audit_service
from service.capacity import rules
from service.capacity import service as capacity_service
from service.capacity.models import Facility, Placement
from service.capacity.service import beds
from service.capacity.service import placements as placement_service
from service.cases import service as case_service
from service.core.db import Database, table_of
from service.core.time import utcnow
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import (
    Factory,
    SignedInUser,
    create_case,
    create_facility,
    create_shelter_case,
    marriage_case,
    person_body,
    request_placement,
)


async def test_adult_man_gets_an_unmet_need_with_its_reason(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_shelter_case(
        client,
        police,
        mimp,
        exploitation=[{"form": "forced_labour", "sector": "gold_mining"}],
        person=person_body(gender="male", age_estimate=38),
    )

    response = await request_placement(client, mimp, case["id"])
    summary = (await client.get("/v1/capacity/summary", headers=police.headers)).json()

    assert response.status_code == 201
    assert response.json()["outcome"] == "unmet_need"
    assert response.json()["unmet_reason"] == "no_facility_for_adult_men"
    assert summary["unmet_needs"]["no_facility_for_adult_men"] >= 1


async def test_finding_a_bed_places_a_girl_in_an_eligible_facility_and_explains_why(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_shelter_case(client, police, mimp, region="17")

    response = await request_placement(client, mimp, case["id"], risk_level=2)

    assert response.status_code == 201, response.text
    result = response.json()
    assert result["outcome"] == "placed"
    placement = result["placement"]
    decision = (
        await client.get(f"/v1/placements/{placement['id']}/decision", headers=police.headers)
    ).json()
    assert decision["rule_version"].startswith("placement/")
    assert decision["inputs"]["minor"] is True
    assert decision["facility_id"] == placement["facility_id"]
    assert decision["considered"]["eligible_in_order"][0] == placement["facility_code"]
    facility = (
        await client.get(f"/v1/facilities/{placement['facility_id']}", headers=police.headers)
    ).json()
    assert facility["max_age"] >= 15 >= facility["min_age"]
    view = (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()
    assert view["status"] == "in_care"
    # The shelter's operator is now involved and sees the case.
    await client.post(
        f"/v1/placements/{placement['id']}/end",
        json={"reason": "discharged"},
        headers=mimp.headers,
    )


async def _active_placement(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str
) -> dict[str, Any] | None:
    response = await client.get(f"/v1/cases/{case_id}/placements", headers=user.headers)
    assert response.status_code == 200, response.text
    placements = response.json()
    return next((p for p in placements if p["status"] in {"placed", "held"}), None)


async def test_waitlist_is_served_children_first_then_risk_then_time(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    occupant = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=30))
    assert (
        await request_placement(client, mimp, occupant["id"], facility_id=facility["id"])
    ).status_code == 201

    cases = {
        "adult_low": (
            await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=25)),
            1,
        ),
        "adult_high": (
            await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=26)),
            3,
        ),
        "child": (
            await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=16)),
            0,
        ),
    }
    positions = {}
    for name, (case, risk) in cases.items():
        response = await request_placement(
            client, mimp, case["id"], facility_id=facility["id"], risk_level=risk
        )
        assert response.status_code == 202, response.text
        assert response.json()["outcome"] == "waitlisted"
        positions[name] = response.json()["waitlist_position"]
    # Asking again does not queue twice; the position reflects who came after.
    again = await request_placement(
        client, mimp, cases["adult_low"][0]["id"], facility_id=facility["id"]
    )
    assert again.json()["waitlist_position"] == positions["adult_low"] + 2

    served = []
    current = occupant
    for _ in range(3):
        placement = await _active_placement(client, police, current["id"])
        assert placement is not None
        ended = await client.post(
            f"/v1/placements/{placement['id']}/end",
            json={"reason": "discharged"},
            headers=mimp.headers,
        )
        assert ended.status_code == 200, ended.text
        now = (await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)).json()
        assert (now["occupied"], now["available"]) == (1, 0)
        newly = [
            n
            for n, (case, _) in cases.items()
            if n not in served and await _active_placement(client, police, case["id"]) is not None
        ]
        assert len(newly) == 1, newly
        name = newly[0]
        served.append(name)
        current = cases[name][0]

    assert served == ["child", "adult_high", "adult_low"]


async def test_an_expired_hold_frees_the_bed(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    in_transit = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=19))
    next_one = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=20))

    held = await request_placement(
        client, mimp, in_transit["id"], facility_id=facility["id"], hold_hours=6
    )
    blocked = await request_placement(client, mimp, next_one["id"], facility_id=facility["id"])
    assert held.json()["outcome"] == "held"
    assert held.json()["placement"]["hold_expires_at"] is not None
    assert blocked.status_code == 202
    assert blocked.json()["outcome"] == "waitlisted"
    shown = (await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)).json()
    assert (shown["held"], shown["available"]) == (1, 0)

    # Six hours pass on the road and nobody arrives.
    placements = table_of(Placement)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(placements)
            .where(placements.c.id == uuid.UUID(held.json()["placement"]["id"]))
            .values(hold_expires_at=utcnow() - timedelta(minutes=1))
        )
    async with db.session() as session:
        freed = await capacity_service.expire_holds(session)

    assert freed == 1
    hold = (
        await client.get(f"/v1/cases/{in_transit['id']}/placements", headers=police.headers)
    ).json()[0]
    assert hold["status"] == "expired"
    waiting = await _active_placement(client, police, next_one["id"])
    assert waiting is not None
    assert waiting["facility_id"] == facility["id"]
    late = await client.post(f"/v1/placements/{hold['id']}/arrive", headers=mimp.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "placement_not_active"


async def test_arrival_turns_a_hold_into_a_placement(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=2)
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=22))
    held = (
        await request_placement(client, mimp, case["id"], facility_id=facility["id"], hold_hours=2)
    ).json()
    arrived = await client.post(
        f"/v1/placements/{held['placement']['id']}/arrive", headers=mimp.headers
    )
    assert arrived.status_code == 200
    assert arrived.json()["status"] == "placed"
    now = (await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)).json()
    assert (now["occupied"], now["held"], now["available"]) == (1, 0, 1)


async def test_capacity_history_answers_as_of_a_past_moment(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=2)
    after_opening = utcnow()
    grown = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"capacity": 5, "reason": "new wing"},
        headers=admin.headers,
    )
    after_growth = utcnow()
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=28))
    await request_placement(client, mimp, case["id"], facility_id=facility["id"])
    placement = await _active_placement(client, police, case["id"])
    assert placement is not None
    await client.post(
        f"/v1/placements/{placement['id']}/end",
        json={"reason": "transferred"},
        headers=mimp.headers,
    )
    shrink_too_far = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"status": "temporarily_closed", "reason": "repairs"},
        headers=admin.headers,
    )

    def as_of(moment: Any) -> dict[str, Any]:
        return {"as_of": moment.isoformat()}

    url = f"/v1/facilities/{facility['id']}"
    then = (await client.get(url, params=as_of(after_opening), headers=police.headers)).json()
    grown_then = (await client.get(url, params=as_of(after_growth), headers=police.headers)).json()
    while_placed = (
        await client.get(
            url,
            params=as_of(
                datetime.fromisoformat(placement["placed_at"]) + timedelta(microseconds=1)
            ),
            headers=police.headers,
        )
    ).json()
    now = (await client.get(url, headers=police.headers)).json()

    assert grown.status_code == 201
    assert (then["capacity"], then["occupied"]) == (2, 0)
    assert (grown_then["capacity"], grown_then["occupied"]) == (5, 0)
    assert (while_placed["capacity"], while_placed["occupied"]) == (5, 1)
    assert shrink_too_far.status_code == 201
    assert (now["status"], now["occupied"], now["available"]) == ("temporarily_closed", 0, 0)


async def test_capacity_cannot_drop_below_the_beds_in_use(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=28))
    await request_placement(client, mimp, case["id"], facility_id=facility["id"])
    refused = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"capacity": 0, "reason": "budget cut"},
        headers=admin.headers,
    )
    caseworker = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"capacity": 3, "reason": "x"},
        headers=police.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "capacity_below_occupancy"
    assert caseworker.status_code == 403
    assert caseworker.json()["code"] == "forbidden"


async def test_the_address_is_shown_only_to_the_operator_and_to_those_with_a_resident(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    operator = await factory.user("MIMP", Role.shelter_staff)
    police = await factory.user("PNP", Role.caseworker)
    stranger = await factory.user("MINEDU", Role.caseworker)
    facility = await create_facility(client, admin, capacity=3, operator="NGO-SAMPLE")
    ngo = await factory.user("NGO-SAMPLE", Role.shelter_staff)
    url = f"/v1/facilities/{facility['id']}"

    before = (await client.get(url, headers=police.headers)).json()
    # The NGO accepts the shelter referral and places her in its own shelter.
    case = await create_shelter_case(client, police, ngo, **marriage_case(age_estimate=23))
    await request_placement(client, ngo, case["id"], facility_id=facility["id"])
    with_resident = (await client.get(url, headers=police.headers)).json()
    listed = (
        await client.get("/v1/facilities", params={"region": "24"}, headers=stranger.headers)
    ).json()

    assert before["address"] is None
    assert (await client.get(url, headers=ngo.headers)).json()["address"] == "Av. Secreta 123"
    assert with_resident["address"] == "Av. Secreta 123"
    assert (await client.get(url, headers=operator.headers)).json()["address"] is None
    assert all(f["address"] is None for f in listed)
    directory = (await client.get("/v1/directory/hsds", headers=stranger.headers)).json()
    assert "Av. Secreta 123" not in str(directory)
    [capacity] = [c for c in directory["service_capacity"] if c["service_id"] == facility["id"]]
    assert (capacity["maximum"], capacity["available"]) == (3, 2)


async def test_a_child_waiting_in_a_police_station_keeps_the_alert_until_placed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    adult = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=30))
    await request_placement(client, mimp, adult["id"], facility_id=facility["id"])
    child = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=14))
    custody = (
        await client.post(
            f"/v1/cases/{child['id']}/custody-periods",
            json={
                "place_kind": "police_station",
                "start": (utcnow() - timedelta(hours=1)).isoformat(),
            },
            headers=police.headers,
        )
    ).json()
    waiting = await request_placement(client, mimp, child["id"], facility_id=facility["id"])
    await client.post(
        f"/v1/custody-periods/{custody['id']}/end",
        json={"end": utcnow().isoformat()},
        headers=police.headers,
    )

    def open_alerts() -> Any:
        return client.get("/v1/alerts", params={"case_id": child["id"]}, headers=police.headers)

    still_open = (await open_alerts()).json()["items"]
    occupant = await _active_placement(client, police, adult["id"])
    assert occupant is not None
    await client.post(
        f"/v1/placements/{occupant['id']}/end",
        json={"reason": "discharged"},
        headers=mimp.headers,
    )

    assert waiting.status_code == 202
    assert [a["kind"] for a in still_open] == ["minor_in_custody"]
    assert await _active_placement(client, police, child["id"]) is not None
    assert (await open_alerts()).json()["items"] == []


async def test_the_database_itself_refuses_an_overbooked_facility(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    facility = await create_facility(client, admin, capacity=2)
    facilities = table_of(Facility)
    with pytest.raises(sa.exc.IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.update(facilities)
                .where(facilities.c.id == uuid.UUID(facility["id"]))
                .values(in_use=facilities.c.capacity + 1)
            )


async def test_asking_for_a_facility_that_cannot_take_the_person_names_why(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=4, nationalities=["VEN"], max_age=17)
    case = await create_shelter_case(
        client, police, mimp, **marriage_case(age_estimate=30, nationality="PER")
    )

    response = await request_placement(client, mimp, case["id"], facility_id=facility["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "facility_not_eligible"
    assert response.json()["reasons"] == ["age", "nationality"]
    assert await _active_placement(client, police, case["id"]) is None


async def test_a_bed_taken_meanwhile_leaves_nothing_behind(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    first = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=30))
    # Not referred: nothing but the rolled-back placement would have involved MIMP.
    late = await create_case(client, police, **marriage_case(age_estimate=31))
    await request_placement(client, mimp, first["id"], facility_id=facility["id"])

    # The late request chose the bed before it was taken: its placement must roll back.
    async with db.session() as session:
        case = await case_service.get_case_for(
            session, actor=police.actor, case_id=uuid.UUID(late["id"])
        )
        full = await capacity_service.get_facility(session, uuid.UUID(facility["id"]))
        needs = await beds.needs_of(session, case, lgbti_specialized=False)
        stale = rules.Choice(rules.PlacementOutcome.placed, facility_id=full.id)
        queued = audit_service.pending_events(session)
        outcome = await placement_service._place_without_waiting(
            session,
            actor=police.actor,
            case=case,
            facility=full,
            needs=needs,
            choice=stale,
            hold_hours=None,
        )
        assert outcome is None
        assert audit_service.pending_events(session) == queued
        assert case.status == "identified"

    view = (await client.get(f"/v1/cases/{late['id']}", headers=police.headers)).json()
    placements = (
        await client.get(f"/v1/cases/{late['id']}/placements", headers=police.headers)
    ).json()
    shown = (await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)).json()
    events = await query(
        db,
        "SELECT action FROM audit_event WHERE entity_id = :id AND action LIKE 'placement.%'",
        id=late["id"],
    )
    assert view["status"] == "identified"
    assert "MIMP" not in view["involved_organizations"]
    assert placements == []
    assert (shown["occupied"], shown["available"]) == (1, 0)
    assert events == []
