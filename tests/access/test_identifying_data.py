"""Identifying data never reaches a role that may not see it: every GET route of the access
table, about objects whose person carries marker names, document and birth date, asked by
analysts, auditors, administrators (of the organization involved) and by a caseworker of an
organization that is not involved; and the side channels that used to confirm a case."""

from __future__ import annotations

import uuid

import httpx
import pytest

from service.identity.rules import Role
from tests.access.test_route_table import ROWS
from tests.access.world import (
    MARKER_BIRTH,
    MARKER_FAMILY,
    MARKER_NAME,
    UNINVOLVED,
    Call,
    World,
)
from tests.support.factories import Factory, SignedInUser

MAY_NOT_SEE = ("analyst", "auditor", "admin", UNINVOLVED)
GETS = sorted(
    op
    for op in ROWS
    if op != "auth-issue_token"
    and op.split("-", 1)[1].startswith(
        ("read", "list", "get", "capacity_summary", "hsds", "healthz", "readyz")
    )
)


@pytest.fixture(scope="module")
def world(client: httpx.AsyncClient, factory: Factory) -> World:
    return World(client, factory, markers=True)


def _leaks(world: World, text: str) -> list[str]:
    markers = (MARKER_NAME, MARKER_FAMILY, MARKER_BIRTH, *world.documents)
    return [m for m in markers if m in text]


async def _get(world: World, call: Call, who: str, org: str) -> httpx.Response:
    user = await world.principal(org, who)
    return await world.client.request(
        call.method,
        call.path,
        params=call.params,
        headers=user.headers if call.auth else {},
    )


async def test_the_identifying_organization_does_see_the_markers(world: World) -> None:
    case = await world.case()
    police = await world.user("PNP", Role.identifier)

    response = await world.client.get(f"/v1/cases/{case['id']}/person", headers=police.headers)

    assert response.status_code == 200, response.text
    assert MARKER_NAME in _leaks(world, response.text)
    assert world.documents[-1] in _leaks(world, response.text)


@pytest.mark.parametrize("operation", GETS)
async def test_no_get_route_shows_a_marker_to_those_who_may_not_see_the_person(
    world: World, operation: str
) -> None:
    row = ROWS[operation]
    call = await row.build(world, row.org)
    assert call.method == "GET", operation
    # The audit trail is the auditors' and administrators' to read: it covers these cases.
    extra = [Call("GET", "/v1/audit/events")]

    for who in MAY_NOT_SEE:
        for asked in (call, *extra):
            response = await _get(world, asked, who, row.org)
            assert _leaks(world, response.text) == [], (operation, who, asked.path)


async def test_eligible_facilities_of_a_case_are_refused_to_roles_that_see_no_case(
    world: World,
) -> None:
    case = await world.case()
    never = str(uuid.uuid4())
    refusals = {}
    for role in (Role.analyst, Role.auditor, Role.admin):
        user = await world.user("PNP", role)
        for target in (case["id"], never):
            response = await world.client.get(
                "/v1/facilities", params={"eligible_for_case": target}, headers=user.headers
            )
            refusals[role.value, target == never] = (response.status_code, response.json()["code"])

    assert set(refusals.values()) == {(403, "forbidden")}


async def test_eligible_facilities_of_a_hidden_case_answer_as_for_a_case_that_never_was(
    world: World,
) -> None:
    case = await world.case()
    stranger = await world.principal("PNP", UNINVOLVED)
    police = await world.user("PNP", Role.identifier)

    async def ask(target: str, user: SignedInUser) -> httpx.Response:
        return await world.client.get(
            "/v1/facilities", params={"eligible_for_case": target}, headers=user.headers
        )

    hidden = await ask(case["id"], stranger)
    never = await ask(str(uuid.uuid4()), stranger)
    involved = await ask(case["id"], police)

    assert (hidden.status_code, never.status_code) == (404, 404)
    assert (hidden.json()["code"], hidden.json()["title"]) == (
        never.json()["code"],
        never.json()["title"],
    )
    assert involved.status_code == 200


async def test_a_residents_shelter_address_is_shown_to_case_roles_only(world: World) -> None:
    placement = await world.placement()
    url = f"/v1/facilities/{placement['facility_id']}"
    shown = {}
    for role in (Role.caseworker, Role.analyst, Role.auditor, Role.admin):
        user = await world.user("PNP", role)
        shown[role.value] = (await world.client.get(url, headers=user.headers)).json()["address"]

    assert shown == {
        "caseworker": "Av. Secreta 123",
        "analyst": None,
        "auditor": None,
        "admin": None,
    }
