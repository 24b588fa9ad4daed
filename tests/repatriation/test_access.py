"""The access rule on every repatriation route: an uninvolved organization gets 404 (the
case's or the repatriation's), roles without case access 403, and nothing is written."""

from __future__ import annotations

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.legal.helpers import audit_actions
from tests.repatriation.helpers import (
    TRAVEL_ON,
    abroad_case,
    consent,
    foreign_case,
    home_body,
    plan,
)
from tests.support.factories import Factory


async def test_uninvolved_organizations_get_404_and_analysts_403(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    outsider = await factory.user("NGO-SAMPLE", Role.caseworker)
    analyst = await factory.user("MIMP", Role.analyst)
    auditor = await factory.user("MIMP", Role.auditor)
    home = await abroad_case(client, consulate)
    planned = (await plan(client, consulate, home["id"], **home_body())).json()
    rid, cid = planned["id"], home["id"]
    claim = {"status": "pending", "effective_on": "2026-03-20"}
    calls = [
        ("POST", f"/v1/cases/{cid}/asylum-claim", claim, "case_not_found"),
        ("GET", f"/v1/cases/{cid}/asylum-claim", None, "case_not_found"),
        ("POST", f"/v1/cases/{cid}/residency", claim | {"status": "temporary"}, "case_not_found"),
        ("GET", f"/v1/cases/{cid}/residency", None, "case_not_found"),
        (
            "POST",
            f"/v1/cases/{cid}/repatriations",
            home_body(travel_on=TRAVEL_ON),
            "case_not_found",
        ),
        ("GET", f"/v1/cases/{cid}/repatriations", None, "case_not_found"),
        ("GET", f"/v1/repatriations/{rid}", None, "repatriation_not_found"),
        (
            "POST",
            f"/v1/repatriations/{rid}/arrival",
            {"arrived_on": "2026-04-03"},
            "repatriation_not_found",
        ),
        (
            "POST",
            f"/v1/repatriations/{rid}/cancel",
            {"reason": "person_declined"},
            "repatriation_not_found",
        ),
    ]
    before = await audit_actions(db, cid)

    for method, url, body, code in calls:
        uninvolved = await client.request(method, url, json=body, headers=outsider.headers)
        assert (uninvolved.status_code, uninvolved.json()["code"]) == (404, code), url
        for role in (analyst, auditor):
            refused = await client.request(method, url, json=body, headers=role.headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), url

    assert await audit_actions(db, cid) == before
    still = await client.get(f"/v1/repatriations/{rid}", headers=consulate.headers)
    assert still.json()["status"] == "planned"


async def test_an_unknown_repatriation_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    police = await factory.user("PNP", Role.identifier)

    response = await client.get(
        "/v1/repatriations/00000000-0000-4000-8000-000000000000", headers=police.headers
    )

    assert (response.status_code, response.json()["code"]) == (404, "repatriation_not_found")


async def test_a_closed_case_is_not_repatriated_again(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    await consent(client, police, case["id"], ["repatriation"])
    closed = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers=police.headers,
    )

    response = await plan(client, police, case["id"], direction="to_country_of_origin")

    assert closed.status_code == 201, closed.text
    assert (response.status_code, response.json()["code"]) == (409, "case_closed")
