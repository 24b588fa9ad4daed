"""Placements never exceed capacity: many requests from several processes, one facility,
a real multi-worker server, one database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityKind
from service.capacity.schemas import FacilityCreate
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import create_cases, make_actor
from tests.support.databases import query
from tests.support.load import fire_from_processes, running_server

pytestmark = pytest.mark.slow

BEDS = 28  # the 2016 specialized shelters' total


async def test_requests_hammering_one_facility_never_overbook(fresh_settings: Settings) -> None:
    requests_total = 200 if fresh_settings.is_sqlite else 1000
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
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
    await create_cases(db, actor, requests_total)
    case_ids = [str(uuid.UUID(str(c))) for (c,) in await query(db, "SELECT id FROM case_file")]
    token = security.tokens.issue(user_id=actor.user_id, organization_code="PNP", role="identifier")
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
    await db.dispose()

    assert len(answers) == requests_total  # every request answered ...
    assert tally == {(201, "placed"): BEDS, (202, "waitlisted"): requests_total - BEDS}, tally
    assert (in_use, capacity) == (BEDS, BEDS)  # ... exactly 28 placed, none beyond capacity
    assert placed_rows == BEDS
    assert waiting_rows == requests_total - BEDS
