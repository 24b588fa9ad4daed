"""A facility's ETag: it moves with its capacity and with the beds in use; a stale If-Match
on a capacity change is refused."""

from __future__ import annotations

import httpx

from service.identity.rules import Role
from tests.support.factories import (
    Factory,
    create_facility,
    create_shelter_case,
    marriage_case,
    request_placement,
)


async def test_facility_etag_moves_with_capacity_and_beds_in_use(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    # Women only: the shared database must keep having no facility for adult men.
    facility = await create_facility(client, admin, capacity=1, genders=["female"])
    path = f"/v1/facilities/{facility['id']}"
    opened = await client.get(path, headers=admin.headers)

    grown = await client.post(
        f"{path}/capacity-changes",
        json={"capacity": 2, "reason": "new wing"},
        headers={**admin.headers, "If-Match": opened.headers["ETag"]},
    )
    after_growth = await client.get(path, headers=admin.headers)
    shelter = await factory.user("MIMP", Role.caseworker)
    case = await create_shelter_case(client, police, shelter, **marriage_case(age_estimate=30))
    placed = await request_placement(client, shelter, case["id"], facility_id=facility["id"])
    after_placement = await client.get(path, headers=admin.headers)

    assert opened.status_code == 200, opened.text
    assert grown.status_code == 201, grown.text
    assert grown.headers["ETag"] == after_growth.headers["ETag"] != opened.headers["ETag"]
    assert placed.status_code == 201, placed.text
    assert after_placement.headers["ETag"] != after_growth.headers["ETag"]


async def test_capacity_change_with_a_stale_etag_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    facility = await create_facility(client, admin, capacity=3, genders=["female"])
    path = f"/v1/facilities/{facility['id']}"
    stale = (await client.get(path, headers=admin.headers)).headers["ETag"]
    first = await client.post(
        f"{path}/capacity-changes",
        json={"capacity": 5, "reason": "new wing"},
        headers={**admin.headers, "If-Match": stale},
    )

    second = await client.post(
        f"{path}/capacity-changes",
        json={"capacity": 1, "reason": "repairs"},
        headers={**admin.headers, "If-Match": stale},
    )

    assert first.status_code == 201, first.text
    assert second.status_code == 412, second.text
    assert second.json()["code"] == "precondition_failed"
    assert (await client.get(path, headers=admin.headers)).json()["capacity"] == 5
