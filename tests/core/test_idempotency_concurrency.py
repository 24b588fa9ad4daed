"""Retries racing each other: 200 placement requests with 20 keys, from 4 processes, against
a 4-worker server on one PostgreSQL. Each key places its case once; every other answer is
that key's answer replayed, or a 409 for a key still in flight."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityKind
from service.capacity.schemas import FacilityCreate
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import create_cases, make_actor
from tests.support.databases import query
from tests.support.load import (
    assert_no_case_holds_two_beds,
    post_keyed_from_processes,
    running_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

KEYS = 20
TRIES = 10  # per key: 200 requests


async def test_two_hundred_retries_of_twenty_placements_place_exactly_twenty(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
    async with db.session() as session:
        facility = await capacity_service.create_facility(
            session,
            actor=None,
            data=FacilityCreate(
                code=f"RETRY-{uuid.uuid4().hex[:6].upper()}",
                name="Enough beds for every case",
                operator="MIMP",
                region="16",
                kind=FacilityKind.specialized_shelter,
                capacity=KEYS + 5,
            ),
        )
    # The police identify and refer for shelter; MIMP, accepting, asks for the beds.
    shelter = await make_actor(db, security, org="MIMP")
    await create_cases(db, actor, KEYS, shelter=shelter)
    case_ids = [str(uuid.UUID(str(c))) for (c,) in await query(db, "SELECT id FROM case_file")]
    token = security.tokens.issue(
        user_id=shelter.user_id, organization_code="MIMP", role="identifier"
    )
    keys = {case_id: f"place-{uuid.uuid4()}" for case_id in case_ids}
    # Consecutive requests share a key, so each key's tries are spread over all 4 processes.
    requests = [
        (f"/v1/cases/{case_id}/placements", {"facility_id": str(facility.id)}, keys[case_id])
        for case_id in case_ids
        for _ in range(TRIES)
    ]

    with running_server(fresh_settings, workers=4) as url:
        answers = await asyncio.to_thread(
            post_keyed_from_processes, url, token, requests, processes=4, concurrency=16
        )

    [(placed,)] = await query(
        db,
        "SELECT count(*) FROM placement WHERE facility_id = :f AND status = 'placed'",
        f=facility.id,
    )
    [(in_use,)] = await query(db, "SELECT in_use FROM facility WHERE id = :f", f=facility.id)
    [(stored,)] = await query(db, "SELECT count(*) FROM idempotency_key")
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    by_key: dict[str, list[tuple[int, dict[str, Any], bool]]] = defaultdict(list)
    for key, status, body, replayed in answers:
        by_key[key].append((status, body, replayed))
    assert len(answers) == KEYS * TRIES
    assert placed == in_use == KEYS
    assert stored == KEYS
    assert any(replayed for _, _, _, replayed in answers)
    for key, tries in by_key.items():
        firsts = [(s, b) for s, b, replayed in tries if s == 201 and not replayed]
        assert len(firsts) == 1, (key, tries)  # the one answer that did the work
        [(status, body)] = firsts
        assert body["outcome"] == "placed"
        for other_status, other_body, _ in tries:
            if other_status == 409:
                assert other_body["code"] == "idempotency_key_in_flight"
            else:  # the first answer, or its identical replay
                assert (other_status, other_body) == (status, body)
