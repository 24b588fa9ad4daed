"""The waitlist from request to its end: placed, withdrawn with a reason, expired; one order;
freed, added, new and reopened beds served at once; closed cases and people already in a bed
passed over, and reported."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from service.capacity import service as capacity_service
from service.capacity.models import (
    Placement,
    PlacementRequest,
    PlacementRequestRiskChange,
    UnmetNeed,
)
from service.capacity.rules import EndReason, FacilityKind, PlacementOutcome
from service.capacity.schemas import FacilityCreate, PlacementCreate, PlacementResult
from service.cases import service as case_service
from service.cases.models import CaseFile
from service.consent import service as consent_service
from service.consent.rules import ConsentPurpose
from service.consent.schemas import ConsentCreate
from service.core.crypto import Keyring
from service.core.db import Database, table_of
from service.core.security import Security
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import open_database
from service.persons import service as person_service
from service.persons.schemas import PersonCreate
from tests.support.audit import case_create, make_actor
from tests.support.databases import query
from tests.support.factories import (
    Factory,
    SignedInUser,
    create_facility,
    create_shelter_case,
    marriage_case,
    request_placement,
)


async def _requests(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/cases/{case_id}/placement-requests", headers=user.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def _placements(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/cases/{case_id}/placements", headers=user.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def _active(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> list[str]:
    return [
        p["facility_id"]
        for p in await _placements(client, user, case_id)
        if p["status"] in {"placed", "held"}
    ]


def _raw_bytes(value: object) -> bytes:
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    return str(value).encode()


async def _end(client: httpx.AsyncClient, user: SignedInUser, placement_id: str) -> None:
    response = await client.post(
        f"/v1/placements/{placement_id}/end", json={"reason": "discharged"}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def _full_facility(
    client: httpx.AsyncClient,
    admin: SignedInUser,
    police: SignedInUser,
    mimp: SignedInUser,
    **overrides: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-bed facility and the placement that fills it."""
    facility = await create_facility(client, admin, capacity=1, **overrides)
    occupant = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=40))
    placed = await request_placement(client, mimp, occupant["id"], facility_id=facility["id"])
    assert placed.status_code == 201, placed.text
    return facility, placed.json()["placement"]


async def test_a_direct_placement_takes_the_person_off_the_waitlist(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, occupant = await _full_facility(client, admin, police, mimp)
    other = await create_facility(client, admin, capacity=1)
    person = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=22))
    waiting = await request_placement(client, mimp, person["id"], facility_id=full["id"])
    assert waiting.status_code == 202, waiting.text

    direct = await request_placement(client, mimp, person["id"], facility_id=other["id"])
    [request] = await _requests(client, police, person["id"])

    assert direct.status_code == 201, direct.text
    assert (request["status"], request["end_reason"]) == ("withdrawn", "placed_directly")
    assert request["position"] is None
    # The bed freed at the first facility does not give the person a second bed.
    await _end(client, mimp, occupant["id"])
    assert await _active(client, police, person["id"]) == [other["id"]]
    shown = (await client.get(f"/v1/facilities/{full['id']}", headers=police.headers)).json()
    assert (shown["occupied"], shown["available"]) == (0, 1)


async def test_the_database_refuses_a_second_active_bed_or_a_second_waiting_request(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, occupant = await _full_facility(client, admin, police, mimp)
    person = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=23))
    assert (
        await request_placement(client, mimp, person["id"], facility_id=full["id"])
    ).status_code == 202
    placements, requests = table_of(Placement), table_of(PlacementRequest)
    async with db.engine.connect() as conn:
        bed = dict(
            (await conn.execute(sa.select(placements).where(placements.c.id == _id(occupant))))
            .one()
            ._mapping
        )
        wait = dict(
            (await conn.execute(sa.select(requests).where(requests.c.case_id == _id(person))))
            .one()
            ._mapping
        )

    # Written around the application, straight into the tables: the database itself refuses.
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.insert(placements).values({**bed, "id": uuid.uuid4()}))
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.insert(requests).values({**wait, "id": uuid.uuid4()}))


async def test_a_freed_bed_passes_over_closed_cases_and_people_already_in_a_bed_and_says_so(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, occupant = await _full_facility(client, admin, police, mimp)
    elsewhere = await create_facility(client, admin, capacity=1)
    closed = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=16))
    in_bed = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=17))
    served = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=30))
    for case in (closed, in_bed, served):
        response = await request_placement(client, mimp, case["id"], facility_id=full["id"])
        assert response.status_code == 202, response.text
    # Records written before this rule, or by hand: a waiting request of a closed case, and
    # one of a person who has a bed elsewhere.
    cases, requests = table_of(CaseFile), table_of(PlacementRequest)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(cases).where(cases.c.id == _id(closed)).values(status="closed")
        )
    [in_bed_request] = await _requests(client, police, in_bed["id"])
    direct = await request_placement(client, mimp, in_bed["id"], facility_id=elsewhere["id"])
    assert direct.status_code == 201, direct.text
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(requests)
            .where(requests.c.id == uuid.UUID(in_bed_request["id"]))
            .values(status="waiting", end_reason=None)
        )

    await _end(client, mimp, occupant["id"])

    assert await _active(client, police, served["id"]) == [full["id"]]
    assert await _active(client, police, closed["id"]) == []
    assert await _active(client, police, in_bed["id"]) == [elsewhere["id"]]
    async with db.engine.connect() as conn:
        closed_request = (
            await conn.execute(
                sa.select(requests.c.status, requests.c.end_reason).where(
                    requests.c.case_id == _id(closed)
                )
            )
        ).one()
    assert tuple(closed_request) == ("withdrawn", "case_closed")
    [in_bed_now] = await _requests(client, police, in_bed["id"])
    assert (in_bed_now["status"], in_bed_now["end_reason"]) == ("withdrawn", "already_placed")
    [(changes,)] = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'waitlist.offer_skipped'"
        " AND entity_id = :facility",
        facility=full["id"],
    )
    assert "case_closed" in str(changes)
    assert "already_placed" in str(changes)


def _id(case: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(case["id"])


async def test_closing_a_case_frees_its_bed_for_the_next_person_and_ends_what_it_waited_for(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    leaving = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=24))
    placed = await request_placement(client, mimp, leaving["id"], facility_id=facility["id"])
    assert placed.status_code == 201, placed.text
    next_one = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=25))
    assert (
        await request_placement(client, mimp, next_one["id"], facility_id=facility["id"])
    ).status_code == 202
    referral = await client.post(
        f"/v1/cases/{leaving['id']}/referrals",
        json={
            "to_org": "MINJUS",
            "purpose": "legal_aid",
            "consent_override_justification": "the person asked for a defender on the spot",
        },
        headers=police.headers,
    )
    assert referral.status_code == 201, referral.text
    other_waiting = await create_shelter_case(
        client, police, mimp, **marriage_case(age_estimate=26)
    )
    assert (
        await request_placement(client, mimp, other_waiting["id"], facility_id=facility["id"])
    ).status_code == 202

    closing = await client.post(
        f"/v1/cases/{other_waiting['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers=police.headers,
    )
    assert closing.status_code == 201, closing.text
    [withdrawn] = await _requests(client, police, other_waiting["id"])
    assert (withdrawn["status"], withdrawn["end_reason"]) == ("withdrawn", "case_closed")

    closed = await client.post(
        f"/v1/cases/{leaving['id']}/transitions",
        json={"to": "closed", "reason": "reintegrated"},
        headers=police.headers,
    )

    assert closed.status_code == 201, closed.text
    [ended] = await _placements(client, police, leaving["id"])
    assert (ended["status"], ended["end_reason"]) == ("ended", "case_closed")
    assert await _active(client, police, next_one["id"]) == [facility["id"]]
    outgoing = (
        await client.get(
            "/v1/referrals",
            params={"direction": "outgoing", "case_id": leaving["id"]},
            headers=police.headers,
        )
    ).json()["items"]
    [ref] = [r for r in outgoing if r["purpose"] == "legal_aid"]
    assert (ref["status"], ref["reason"]) == ("cancelled", "case_closed")
    actions = {
        a
        for (a,) in await query(
            db, "SELECT action FROM audit_event WHERE entity_id = :id", id=leaving["id"]
        )
    }
    assert {"case.transitioned", "placement.case_closed", "referral.cancelled"} <= actions
    assert "waitlist.withdrawn" in {
        a
        for (a,) in await query(
            db, "SELECT action FROM audit_event WHERE entity_id = :id", id=other_waiting["id"]
        )
    }

    # Reopening restores none of it.
    reopened = await client.post(
        f"/v1/cases/{leaving['id']}/transitions",
        json={"to": "in_care", "reason": "re_trafficked"},
        headers=police.headers,
    )
    assert reopened.status_code == 201, reopened.text
    assert await _active(client, police, leaving["id"]) == []
    assert await _active(client, police, next_one["id"]) == [facility["id"]]


async def test_a_closed_case_is_not_placed(client: httpx.AsyncClient, factory: Factory) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=1)
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=27))
    await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "declined_services"},
        headers=police.headers,
    )

    response = await request_placement(client, mimp, case["id"], facility_id=facility["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "case_closed"


async def test_a_new_facility_and_added_or_reopened_beds_serve_the_waitlist_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    # Only LGBTI-specialized facilities take these requests: none is seeded.
    first = await create_facility(client, admin, capacity=1, lgbti_specialized=True)
    cases = [
        await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=28 + n))
        for n in range(4)
    ]
    outcomes = [
        (await request_placement(client, mimp, c["id"], lgbti_specialized=True)).json()["outcome"]
        for c in cases
    ]
    assert outcomes == ["placed", "waitlisted", "waitlisted", "waitlisted"]

    second = await create_facility(client, admin, capacity=1, lgbti_specialized=True)
    assert await _active(client, police, cases[1]["id"]) == [second["id"]]

    more_beds = await client.post(
        f"/v1/facilities/{first['id']}/capacity-changes",
        json={"capacity": 2, "reason": "a second bed"},
        headers=admin.headers,
    )
    assert more_beds.status_code == 201, more_beds.text
    assert await _active(client, police, cases[2]["id"]) == [first["id"]]

    await client.post(
        f"/v1/facilities/{second['id']}/capacity-changes",
        json={"status": "temporarily_closed", "reason": "repairs"},
        headers=admin.headers,
    )
    [placement] = [
        p for p in await _placements(client, police, cases[1]["id"]) if p["status"] == "placed"
    ]
    await _end(client, mimp, placement["id"])
    assert await _active(client, police, cases[3]["id"]) == []  # closed: nobody placed there
    reopened = await client.post(
        f"/v1/facilities/{second['id']}/capacity-changes",
        json={"status": "open", "reason": "repaired"},
        headers=admin.headers,
    )
    assert reopened.status_code == 201, reopened.text
    assert await _active(client, police, cases[3]["id"]) == [second["id"]]


async def test_a_risk_change_reorders_the_list_and_seals_its_reason_for_the_person(
    client: httpx.AsyncClient, factory: Factory, db: Database, app: FastAPI
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, occupant = await _full_facility(client, admin, police, mimp)
    early = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=33))
    late = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=34))
    for case in (early, late):
        response = await request_placement(
            client, mimp, case["id"], facility_id=full["id"], risk_level=1
        )
        assert response.status_code == 202
    [early_request] = await _requests(client, police, early["id"])
    [late_request] = await _requests(client, police, late["id"])
    assert late_request["position"] == early_request["position"] + 1
    marker = "Rosa Quispe: the exploiter found her sister in Juliaca"

    changed = await client.post(
        f"/v1/placement-requests/{late_request['id']}/risk",
        json={"risk_level": 3, "reason": marker},
        headers=police.headers,
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["risk_level"] == 3
    assert marker not in changed.text
    [early_now] = await _requests(client, police, early["id"])
    assert changed.json()["position"] < early_now["position"]
    [(changes,)] = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'waitlist.risk_changed'"
        " AND entity_id = :id",
        id=late["id"],
    )
    # The event says that a reason was given, not what it says.
    assert (changes if isinstance(changes, dict) else json.loads(changes))["reason"] == {
        "changed": True
    }
    # No stored row holds the text in clear, read as someone with database access would.
    raw = [
        *await query(db, "SELECT * FROM placement_request_risk_change"),
        *await query(db, "SELECT * FROM audit_event"),
    ]
    assert [row for row in raw if any(marker.encode() in _raw_bytes(v) for v in row)] == []
    changes_table = table_of(PlacementRequestRiskChange)
    async with db.engine.connect() as conn:
        history = (
            await conn.execute(
                sa.select(
                    changes_table.c.from_level,
                    changes_table.c.to_level,
                    changes_table.c.reason_ciphertext,
                ).where(changes_table.c.request_id == uuid.UUID(late_request["id"]))
            )
        ).all()
    [(from_level, to_level, sealed)] = history
    async with db.session() as session:
        opened = await person_service.open_for_person(
            session,
            keyring=app.state.security.keyring,
            person_id=uuid.UUID(late["person_id"]),
            sealed=bytes(sealed),
        )
    assert (from_level, to_level, opened) == (1, 3, {"reason": marker})
    await _end(client, mimp, occupant["id"])
    assert await _active(client, police, late["id"]) == [full["id"]]
    assert await _active(client, police, early["id"]) == []


async def test_withdrawing_a_request_takes_a_caller_reason_and_only_while_waiting(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, _ = await _full_facility(client, admin, police, mimp)
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=35))
    request_id = (await request_placement(client, mimp, case["id"], facility_id=full["id"])).json()[
        "request_id"
    ]
    url = f"/v1/placement-requests/{request_id}/withdraw"

    system_reason = await client.post(url, json={"reason": "case_closed"}, headers=police.headers)
    done = await client.post(url, json={"reason": "declined_by_person"}, headers=police.headers)
    again = await client.post(url, json={"reason": "declined_by_person"}, headers=police.headers)
    stranger = await factory.user("MINEDU", Role.caseworker)
    hidden = await client.get(f"/v1/placement-requests/{request_id}", headers=stranger.headers)

    assert system_reason.status_code == 422
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["end_reason"]) == (
        "withdrawn",
        "declined_by_person",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "placement_request_not_waiting"
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "placement_request_not_found"


async def test_a_request_waiting_too_long_expires_as_an_unmet_need(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    full, _ = await _full_facility(client, admin, police, mimp)
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=36))
    assert (
        await request_placement(client, mimp, case["id"], facility_id=full["id"])
    ).status_code == 202
    requests = table_of(PlacementRequest)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(requests)
            .where(requests.c.case_id == _id(case))
            .values(requested_at=utcnow() - timedelta(days=31))
        )

    async with db.session() as session:
        expired = await capacity_service.expire_waiting_requests(session, max_days=30)
    async with db.session() as session:
        again = await capacity_service.expire_waiting_requests(session, max_days=30)

    assert expired >= 1
    assert again == 0
    [request] = await _requests(client, police, case["id"])
    assert request["status"] == "expired"
    unmet_table = table_of(UnmetNeed)
    async with db.engine.connect() as conn:
        unmet = (
            await conn.execute(
                sa.select(unmet_table.c.reason).where(unmet_table.c.case_id == _id(case))
            )
        ).all()
    assert [tuple(u) for u in unmet] == [("waited_too_long",)]


async def test_available_beds_are_one_formula_everywhere(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=2, region="23")
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=37))
    assert (
        await request_placement(client, mimp, case["id"], facility_id=facility["id"])
    ).status_code == 201

    def shown(directory: dict[str, Any]) -> int:
        [c] = [c for c in directory["service_capacity"] if c["service_id"] == facility["id"]]
        available: int = c["available"]
        return available

    async def everywhere() -> tuple[int, int, int, int]:
        detail = (
            await client.get(f"/v1/facilities/{facility['id']}", headers=police.headers)
        ).json()
        [listed] = [
            f
            for f in (
                await client.get("/v1/facilities", params={"region": "23"}, headers=police.headers)
            ).json()
            if f["id"] == facility["id"]
        ]
        summary = (await client.get("/v1/capacity/summary", headers=police.headers)).json()
        [region] = [r for r in summary["regions"] if r["region"] == "23"]
        hsds = (await client.get("/v1/directory/hsds", headers=police.headers)).json()
        return detail["available"], listed["available"], region["available"], shown(hsds)

    assert await everywhere() == (1, 1, 1, 1)
    closed = await client.post(
        f"/v1/facilities/{facility['id']}/capacity-changes",
        json={"status": "closed", "reason": "funding ended"},
        headers=admin.headers,
    )
    assert closed.status_code == 201, closed.text
    assert await everywhere() == (0, 0, 0, 0)


async def test_a_freed_bed_reaches_the_first_eligible_person_however_far_down_the_list(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    # MIMP identifies the people and operates the facility: it may place them there.
    actor = await make_actor(db, security, org="MIMP")
    keyring = Keyring(fresh_settings)
    async with db.session() as session:
        adults_only = await capacity_service.create_facility(
            session,
            actor=None,
            data=FacilityCreate(
                code="ADULTS-ONLY",
                name="Adults only",
                operator="MIMP",
                region="16",
                kind=FacilityKind.ngo_shelter,
                capacity=1,
                min_age=18,
            ),
        )

    async def new_case(age: int) -> CaseFile:
        data = case_create().model_copy(
            update={"person": PersonCreate(gender="male", age_estimate=age, nationality="PER")}  # type: ignore[arg-type]
        )
        async with db.session() as session:
            case, _ = await case_service.create_case(
                session, actor=actor, keyring=keyring, data=data
            )
            await consent_service.record_consent(
                session,
                actor=actor,
                case_id=case.id,
                data=ConsentCreate(purposes=[ConsentPurpose.services], language="es"),
            )
        return case

    async def place(case: CaseFile) -> PlacementResult:
        async with db.session() as session:
            return await capacity_service.request_placement(
                session,
                actor=actor,
                case=case,
                data=PlacementCreate(facility_id=adults_only.id),
                holds_shelter_referral=False,
            )

    occupant = await new_case(40)
    placed = await place(occupant)
    assert placed.placement is not None
    # 250 children wait ahead of everyone, for beds this facility does not have.
    children = [await new_case(10) for _ in range(250)]
    needs = {"age": 10, "gender": "male", "exploitation": ["forced_labour"], "region": "16"}
    async with db.session() as session:
        session.add_all(
            PlacementRequest(
                case_id=child.id,
                status="waiting",
                minor=True,
                risk_level=3,
                needs={**needs, "lgbti_specialized": False, "nationality": "PER", "minor": True},
                region="16",
                requested_at=utcnow() - timedelta(hours=1),
            )
            for child in children
        )
    adult = await new_case(30)
    assert (await place(adult)).outcome is PlacementOutcome.waitlisted

    async with db.session() as session:
        await capacity_service.end_placement(
            session,
            actor=actor,
            placement=await capacity_service.get_visible_placement(
                session, actor=actor, placement_id=placed.placement.id
            ),
            reason=EndReason.discharged,
            holds_shelter_referral=False,
        )

    requests = table_of(PlacementRequest)
    async with db.engine.connect() as conn:
        status = (
            await conn.execute(sa.select(requests.c.status).where(requests.c.case_id == adult.id))
        ).scalar_one()
        waiting_children = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(requests)
                .where(requests.c.status == "waiting")
            )
        ).scalar_one()
    await db.dispose()
    assert status == "placed"
    assert waiting_children == 250
