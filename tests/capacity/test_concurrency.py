"""Placements never exceed capacity: many requests from several processes, one facility,
a real multi-worker server, one database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityKind
from service.capacity.schemas import FacilityCreate
from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import create_cases, make_actor
from tests.support.cli import ruta
from tests.support.databases import execute, query
from tests.support.load import assert_no_case_holds_two_beds, fire_from_processes, running_server

pytestmark = pytest.mark.slow

BEDS = 28  # the 2016 specialized shelters' total


async def test_requests_hammering_one_facility_never_overbook(fresh_settings: Settings) -> None:
    requests_total = 200 if fresh_settings.is_sqlite else 1000
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
    # The police identify and refer for shelter; MIMP, accepting, asks for the beds.
    shelter = await make_actor(db, security, org="MIMP")
    async with db.session() as session:
        facility = await capacity_service.create_facility(
            session,
            actor=None,
            data=FacilityCreate(
                code=f"HAMMER-{uuid.uuid4().hex[:6].upper()}",
                name="One facility, many requests",
                operator="MIMP",
                region="17",
                kind=FacilityKind.specialized_shelter,
                capacity=BEDS,
            ),
        )
    await create_cases(db, actor, requests_total, shelter=shelter)
    case_ids = [str(uuid.UUID(str(c))) for (c,) in await query(db, "SELECT id FROM case_file")]
    token = security.tokens.issue(
        user_id=shelter.user_id, organization_code="MIMP", role="identifier"
    )
    requests = [
        (f"/v1/cases/{case_id}/placements", {"facility_id": str(facility.id)})
        for case_id in case_ids
    ]

    with running_server(fresh_settings, workers=4) as url:
        answers, _ = await asyncio.to_thread(
            fire_from_processes, url, token, requests, processes=4, concurrency=16
        )

    tally = Counter(answers)
    [(in_use, capacity)] = await query(
        db, "SELECT in_use, capacity FROM facility WHERE code = :c", c=facility.code
    )
    [(placed_rows,)] = await query(db, "SELECT count(*) FROM placement WHERE status = 'placed'")
    [(waiting_rows,)] = await query(
        db, "SELECT count(*) FROM placement_request WHERE status = 'waiting'"
    )
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    assert len(answers) == requests_total  # every request answered ...
    assert tally == {(201, "placed"): BEDS, (202, "waitlisted"): requests_total - BEDS}, tally
    assert (in_use, capacity) == (BEDS, BEDS)  # ... exactly 28 placed, none beyond capacity
    assert placed_rows == BEDS
    assert waiting_rows == requests_total - BEDS


async def _three_facilities_only(db: Database, beds: tuple[int, ...]) -> list[uuid.UUID]:
    """Close the seeded facilities; open new ones for the test's adults (region 16)."""
    await execute(db, "UPDATE facility SET status = 'closed'")
    ids = []
    async with db.session() as session:
        for n, capacity in enumerate(beds):
            facility = await capacity_service.create_facility(
                session,
                actor=None,
                data=FacilityCreate(
                    code=f"LOAD-{n}-{uuid.uuid4().hex[:6].upper()}",
                    name=f"Load facility {n}",
                    operator="MIMP",
                    region=("16", "25", "10")[n % 3],
                    kind=FacilityKind.ngo_shelter,
                    capacity=capacity,
                ),
            )
            ids.append(facility.id)
    return ids


async def _case_ids(db: Database) -> list[str]:
    rows = await query(db, "SELECT id FROM case_file ORDER BY created_at, id")
    return [str(uuid.UUID(str(c))) for (c,) in rows]


def _verify_audit(settings: Settings) -> None:
    result = ruta(settings, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr


async def test_requests_without_a_facility_fill_three_facilities_exactly(
    fresh_settings: Settings,
) -> None:
    total = 150 if fresh_settings.is_sqlite else 300
    beds = (10, 8, 7)
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
    # The police identify and refer for shelter; MIMP, accepting, asks for the beds.
    shelter = await make_actor(db, security, org="MIMP")
    facility_ids = await _three_facilities_only(db, beds)
    await create_cases(db, actor, total, shelter=shelter)
    token = security.tokens.issue(
        user_id=shelter.user_id, organization_code="MIMP", role="identifier"
    )
    requests: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/cases/{c}/placements", {}) for c in await _case_ids(db)
    ]

    with running_server(fresh_settings, workers=4) as url:
        answers, _ = await asyncio.to_thread(
            fire_from_processes, url, token, requests, processes=4, concurrency=16
        )

    tally = Counter(answers)
    facilities = {
        uuid.UUID(str(i)): (in_use, capacity)
        for i, in_use, capacity in await query(db, "SELECT id, in_use, capacity FROM facility")
    }
    [(placed,)] = await query(db, "SELECT count(*) FROM placement WHERE status = 'placed'")
    [(waiting,)] = await query(
        db, "SELECT count(*) FROM placement_request WHERE status = 'waiting'"
    )
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    assert tally == {(201, "placed"): sum(beds), (202, "waitlisted"): total - sum(beds)}, tally
    assert [facilities[i] for i in facility_ids] == [(b, b) for b in beds]
    assert all(in_use <= capacity for in_use, capacity in facilities.values())
    assert (placed, waiting) == (sum(beds), total - sum(beds))
    _verify_audit(fresh_settings)


async def test_discharges_while_requests_arrive_give_each_freed_bed_to_the_first_waiting(
    fresh_settings: Settings,
) -> None:
    beds, waiting_before, arrivals = 10, 20, 40
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
    # The police identify and refer for shelter; MIMP, accepting, asks for the beds.
    shelter = await make_actor(db, security, org="MIMP")
    await _three_facilities_only(db, (beds,))
    await create_cases(db, actor, beds + waiting_before, shelter=shelter)
    first = await _case_ids(db)
    occupants, waiters = first[:beds], first[beds:]
    token = security.tokens.issue(
        user_id=shelter.user_id, organization_code="MIMP", role="identifier"
    )
    with running_server(fresh_settings, workers=4) as url:
        # Before: the facility full, twenty waiting in order of arrival.
        setup, _ = await asyncio.to_thread(
            fire_from_processes,
            url,
            token,
            [(f"/v1/cases/{c}/placements", {}) for c in occupants],
            processes=1,
            concurrency=1,
        )
        assert Counter(setup) == {(201, "placed"): beds}
        queued, _ = await asyncio.to_thread(
            fire_from_processes,
            url,
            token,
            [(f"/v1/cases/{c}/placements", {}) for c in waiters],
            processes=1,
            concurrency=1,
        )
        assert Counter(queued) == {(202, "waitlisted"): waiting_before}
        await create_cases(db, actor, arrivals, shelter=shelter)
        newcomers = [c for c in await _case_ids(db) if c not in set(first)]
        placements = await query(db, "SELECT id FROM placement WHERE status = 'placed' ORDER BY id")
        discharges = [
            (f"/v1/placements/{uuid.UUID(str(p))}/end", {"reason": "discharged"})
            for (p,) in placements
        ]
        arriving: list[tuple[str, dict[str, Any]]] = [
            (f"/v1/cases/{c}/placements", {}) for c in newcomers
        ]
        mixed = [r for pair in zip(discharges, arriving[:beds], strict=True) for r in pair]
        mixed += arriving[beds:]
        answers, _ = await asyncio.to_thread(
            fire_from_processes, url, token, mixed, processes=4, concurrency=8
        )

    tally = Counter(answers)
    [(in_use, capacity)] = await query(
        db, "SELECT in_use, capacity FROM facility WHERE status = 'open'"
    )
    served = {
        str(uuid.UUID(str(c)))
        for (c,) in await query(db, "SELECT case_id FROM placement WHERE status = 'placed'")
    }
    order = await query(db, "SELECT case_id FROM placement_request ORDER BY requested_at, id")
    queue = [str(uuid.UUID(str(c))) for (c,) in order if str(uuid.UUID(str(c))) in set(waiters)]
    [(still_waiting,)] = await query(
        db, "SELECT count(*) FROM placement_request WHERE status = 'waiting'"
    )
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    assert tally[(200, "None")] == beds, tally  # every discharge answered 200
    assert tally[(202, "waitlisted")] == arrivals, tally
    assert (in_use, capacity) == (beds, beds)
    # Each freed bed went to the first waiting person: the first ten in the queue's order.
    assert served == set(queue[:beds])
    assert still_waiting == waiting_before - beds + arrivals
    _verify_audit(fresh_settings)
