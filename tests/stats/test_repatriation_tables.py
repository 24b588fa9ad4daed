"""The tables the 2017 narrative said were never reported: repatriations (RP1) and residency
granted to foreign victims (RS1), each person once, as known on the day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from service.core.time import utcnow
from service.identity.rules import Role
from service.stats.catalogue import CATALOGUE, ExclusionReason, breakdown
from service.stats.counting import Scope, TrueTable, count_table
from tests.stats.conftest import World
from tests.support.factories import SignedInUser, case_body, create_case, person_body


async def _post(
    world: World, user: SignedInUser, path: str, body: dict[str, Any], expect: int = 201
) -> dict[str, Any]:
    response = await world.client.post(path, json=body, headers=user.headers)
    assert response.status_code == expect, response.text
    data: dict[str, Any] = response.json()
    return data


async def _count(world: World, code: str, known_on: datetime | None = None) -> TrueTable:
    spec = CATALOGUE[code]
    async with world.db.session(write=False) as session:
        return await count_table(
            session,
            spec=spec,
            dimensions=breakdown(spec, None),
            scope=Scope(
                start=date(2026, 1, 1), end=date(2026, 12, 31), known_on=known_on or utcnow()
            ),
        )


@pytest.fixture(scope="module")
async def journeys(world: World) -> dict[str, Any]:
    """A Peruvian woman brought home from Argentina, a Venezuelan girl granted temporary
    residency, and a Venezuelan woman granted permanent residency who never consented to
    statistics."""
    consulate = await world.factory.user("RREE", Role.identifier)
    mimp = await world.factory.user("MIMP", Role.caseworker)
    statistics = {"purposes": ["statistics"], "language": "es"}
    body = case_body(
        exploitation_country="ARG",
        context="consulate_abroad",
        identified_on="2026-02-01",
        person=person_body(age_estimate=26),
    )
    del body["region"]
    response = await world.client.post("/v1/cases", json=body, headers=consulate.headers)
    assert response.status_code == 201, response.text
    woman = response.json()
    await _post(world, consulate, f"/v1/cases/{woman['id']}/consents", statistics)
    trip = await _post(
        world,
        consulate,
        f"/v1/cases/{woman['id']}/repatriations",
        {
            "direction": "to_peru",
            "consulate": "RREE",
            "receiving_organization": "MIMP",
            "arrival_region": "15",
            "travel_on": "2026-02-10",
        },
    )
    before_arrival = utcnow()
    await _post(
        world, mimp, f"/v1/repatriations/{trip['id']}/arrival", {"arrived_on": "2026-02-11"}, 200
    )
    girl = await create_case(
        world.client, mimp, identified_on="2026-03-01", person=person_body(nationality="VEN")
    )
    await _post(world, mimp, f"/v1/cases/{girl['id']}/consents", statistics)
    await _post(
        world,
        mimp,
        f"/v1/cases/{girl['id']}/residency",
        {"status": "temporary", "effective_on": "2026-04-01"},
    )
    silent = await create_case(
        world.client,
        mimp,
        identified_on="2026-03-01",
        person=person_body(nationality="VEN", age_estimate=35),
    )
    await _post(
        world,
        mimp,
        f"/v1/cases/{silent['id']}/residency",
        {"status": "permanent", "effective_on": "2026-04-02"},
    )
    return {"before_arrival": before_arrival}


async def test_repatriations_are_counted_by_direction_once_they_arrived(
    world: World, journeys: dict[str, Any]
) -> None:
    now = await _count(world, "RP1")
    before = await _count(world, "RP1", known_on=journeys["before_arrival"])

    assert now.cells == {("to_peru", "adult", "female"): 1}
    assert now.total == 1
    assert before.cells == {}  # planned, not yet arrived


async def test_residency_granted_to_foreign_victims_who_may_be_counted(
    world: World, journeys: dict[str, Any]
) -> None:
    table = await _count(world, "RS1")

    assert table.cells == {("temporary", "minor", "female"): 1}
    assert table.excluded[ExclusionReason.no_consent_or_basis] == 1
