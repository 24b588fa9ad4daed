"""Who may place: the organization that runs the beds, or one that accepted a shelter
referral of the case, never the identifying police on their own; an adult only with her
consent to services."""

from __future__ import annotations

import uuid

import httpx
import pytest

from service.capacity import service as capacity_service
from service.capacity.schemas import CapacityChange
from service.core.db import Database
from service.core.errors import Forbidden
from service.identity.rules import Role
from tests.support.factories import (
    Factory,
    create_case,
    create_facility,
    create_shelter_case,
    marriage_case,
    refer_for_shelter,
    request_placement,
)


async def test_police_alone_cannot_place_a_girl_in_a_shelter_or_search_for_a_bed(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=2, genders=["female"])
    girl = await create_case(client, police, **marriage_case(age_estimate=15))

    named = await request_placement(client, police, girl["id"], facility_id=facility["id"])
    search = await request_placement(client, police, girl["id"])
    placements = await client.get(f"/v1/cases/{girl['id']}/placements", headers=police.headers)
    requests = await client.get(
        f"/v1/cases/{girl['id']}/placement-requests", headers=police.headers
    )
    shown = (await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)).json()

    assert (named.status_code, named.json()["code"]) == (403, "placement_not_entitled")
    assert (search.status_code, search.json()["code"]) == (403, "placement_not_entitled")
    assert placements.json() == []
    assert requests.json() == []
    assert (shown["occupied"], shown["available"]) == (0, 2)


async def test_a_referral_not_yet_accepted_or_for_another_purpose_does_not_let_mimp_place(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(
        client, admin, capacity=1, operator="NGO-SAMPLE", genders=["female"]
    )
    girl = await create_case(client, police, **marriage_case(age_estimate=14))
    await client.post(
        f"/v1/cases/{girl['id']}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": ["MIMP"], "language": "es"},
        headers=police.headers,
    )
    protection = await client.post(
        f"/v1/cases/{girl['id']}/referrals",
        json={"to_org": "MIMP", "purpose": "protection_services"},
        headers=police.headers,
    )
    accepted = await client.post(
        f"/v1/referrals/{protection.json()['id']}/accept", headers=mimp.headers
    )
    pending = await client.post(
        f"/v1/cases/{girl['id']}/referrals",
        json={"to_org": "MIMP", "purpose": "shelter"},
        headers=police.headers,
    )
    assert (accepted.status_code, pending.status_code) == (200, 201)

    refused = await request_placement(client, mimp, girl["id"], facility_id=facility["id"])
    await client.post(f"/v1/referrals/{pending.json()['id']}/accept", headers=mimp.headers)
    placed = await request_placement(client, mimp, girl["id"], facility_id=facility["id"])

    assert (refused.status_code, refused.json()["code"]) == (403, "placement_not_entitled")
    assert placed.status_code == 201, placed.text
    assert placed.json()["placement"]["facility_id"] == facility["id"]


async def test_the_operator_places_in_its_own_facility_but_not_in_anothers(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    ngo = await factory.user("NGO-SAMPLE", Role.shelter_staff)
    own = await create_facility(
        client, admin, capacity=1, operator="NGO-SAMPLE", genders=["female"]
    )
    mimps = await create_facility(client, admin, capacity=1, operator="MIMP", genders=["female"])
    # The NGO met the girl in its outreach and shelters her itself: no referral, no consent
    # needed for a child in danger.
    girl = await create_case(client, ngo, context="ngo_outreach", **marriage_case(age_estimate=12))

    elsewhere = await request_placement(client, ngo, girl["id"], facility_id=mimps["id"])
    search = await request_placement(client, ngo, girl["id"])
    home = await request_placement(client, ngo, girl["id"], facility_id=own["id"])

    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "placement_not_entitled")
    assert (search.status_code, search.json()["code"]) == (403, "placement_not_entitled")
    assert home.status_code == 201, home.text
    assert home.json()["outcome"] == "placed"


async def test_an_adult_is_placed_only_with_her_consent_to_services(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1, genders=["female"])
    woman = await create_case(client, police, **marriage_case(age_estimate=29))
    # She agrees that MIMP receives her data, not (yet) to services.
    await client.post(
        f"/v1/cases/{woman['id']}/consents",
        json={"purposes": ["data_sharing"], "share_with": ["MIMP"], "language": "es"},
        headers=police.headers,
    )
    referral = await client.post(
        f"/v1/cases/{woman['id']}/referrals",
        json={"to_org": "MIMP", "purpose": "shelter"},
        headers=police.headers,
    )
    await client.post(f"/v1/referrals/{referral.json()['id']}/accept", headers=mimp.headers)

    without = await request_placement(client, mimp, woman["id"], facility_id=facility["id"])
    await client.post(
        f"/v1/cases/{woman['id']}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": ["MIMP"], "language": "es"},
        headers=police.headers,
    )
    placed = await request_placement(client, mimp, woman["id"], facility_id=facility["id"])

    assert (without.status_code, without.json()["code"]) == (409, "placement_consent_required")
    assert placed.status_code == 201, placed.text


async def test_a_refusal_after_consent_stops_an_adults_placement(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1, genders=["female"])
    woman = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=33))
    await client.post(
        f"/v1/cases/{woman['id']}/consents",
        json={"refused": True, "language": "es"},
        headers=police.headers,
    )

    response = await request_placement(client, mimp, woman["id"], facility_id=facility["id"])

    assert (response.status_code, response.json()["code"]) == (409, "placement_consent_required")


async def test_the_shelter_referral_holder_finds_a_bed_anywhere_in_the_country(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    mimp_beds = await create_facility(
        client, admin, capacity=5, operator="MIMP", genders=["female"]
    )
    girl = await create_case(client, police, **marriage_case(age_estimate=16))
    other_girl = await create_case(client, police, **marriage_case(age_estimate=16))
    await refer_for_shelter(client, police, ngo, girl["id"])
    await refer_for_shelter(client, police, ngo, other_girl["id"])

    # A bed the NGO does not run, named; and a search of the whole country.
    named = await request_placement(client, ngo, girl["id"], facility_id=mimp_beds["id"])
    searched = await request_placement(client, ngo, other_girl["id"])

    assert named.status_code == 201, named.text
    assert named.json()["outcome"] == "placed"
    assert named.json()["placement"]["facility_id"] == mimp_beds["id"]
    assert searched.status_code == 201, searched.text
    assert searched.json()["outcome"] == "placed"


async def test_changing_capacity_is_refused_by_the_service_itself_to_a_role_without_the_right(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    staff = await factory.user("MIMP", Role.shelter_staff)
    facility = await create_facility(client, admin, capacity=2, genders=["female"])

    async with db.session() as session:
        with pytest.raises(Forbidden):
            await capacity_service.change_capacity(
                session,
                actor=staff.actor,
                facility_id=uuid.UUID(facility["id"]),
                data=CapacityChange(capacity=9, reason="more beds"),
            )
    over_http = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"capacity": 9, "reason": "more beds"},
        headers=staff.headers,
    )
    shown = (await client.get(f"/v1/facilities/{facility['id']}", headers=admin.headers)).json()

    assert over_http.status_code == 403
    assert shown["capacity"] == 2


async def test_a_freed_bed_does_not_go_to_a_waiting_adult_who_withdrew_her_consent(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1, genders=["female"])
    occupant = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=30))
    waiting = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=31))
    placed = await request_placement(client, mimp, occupant["id"], facility_id=facility["id"])
    queued = await request_placement(client, mimp, waiting["id"], facility_id=facility["id"])
    assert (placed.status_code, queued.status_code) == (201, 202)
    refused = await client.post(
        f"/v1/cases/{waiting['id']}/consents",
        json={"refused": True, "language": "es"},
        headers=police.headers,
    )
    assert refused.status_code == 201, refused.text

    ended = await client.post(
        f"/v1/placements/{placed.json()['placement']['id']}/end",
        json={"reason": "discharged"},
        headers=mimp.headers,
    )
    request = await client.get(
        f"/v1/placement-requests/{queued.json()['request_id']}", headers=mimp.headers
    )
    bed = await client.get(f"/v1/facilities/{facility['id']}", headers=admin.headers)

    assert ended.status_code == 200, ended.text
    assert request.json()["status"] == "waiting"
    assert bed.json()["available"] == 1


async def test_the_police_neither_admit_nor_discharge_the_operator_and_the_referral_holder_do(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    ngo = await factory.user("NGO-SAMPLE", Role.shelter_staff)
    facility = await create_facility(
        client, admin, capacity=2, operator="NGO-SAMPLE", genders=["female"]
    )
    first = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=24))
    second = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=25))
    held = await request_placement(
        client, mimp, first["id"], facility_id=facility["id"], hold_hours=4
    )
    placed = await request_placement(client, mimp, second["id"], facility_id=facility["id"])
    hold_id, placement_id = held.json()["placement"]["id"], placed.json()["placement"]["id"]

    police_arrival = await client.post(f"/v1/placements/{hold_id}/arrive", headers=police.headers)
    police_discharge = await client.post(
        f"/v1/placements/{placement_id}/end",
        json={"reason": "discharged"},
        headers=police.headers,
    )
    unchanged = await client.get(f"/v1/facilities/{facility['id']}", headers=admin.headers)
    operator_arrival = await client.post(f"/v1/placements/{hold_id}/arrive", headers=ngo.headers)
    holder_discharge = await client.post(
        f"/v1/placements/{placement_id}/end",
        json={"reason": "discharged"},
        headers=mimp.headers,
    )

    assert (police_arrival.status_code, police_arrival.json()["code"]) == (
        403,
        "placement_not_entitled",
    )
    assert (police_discharge.status_code, police_discharge.json()["code"]) == (
        403,
        "placement_not_entitled",
    )
    assert (unchanged.json()["occupied"], unchanged.json()["held"]) == (1, 1)
    assert operator_arrival.status_code == 200, operator_arrival.text
    assert operator_arrival.json()["status"] == "placed"
    assert holder_discharge.status_code == 200, holder_discharge.text
    assert holder_discharge.json()["status"] == "ended"
