"""Non-refoulement under concurrency (real row locks on PostgreSQL): an asylum claim
recorded while a return is planned or its arrival recorded never leaves a return standing
over a pending claim, and two repatriations planned at once leave one."""

from __future__ import annotations

import asyncio

import httpx

from service.identity.rules import Role
from tests.repatriation.helpers import (
    abroad_case,
    arrive,
    claim,
    consent,
    foreign_case,
    home_body,
    plan,
)
from tests.support.factories import Factory

RETURN = {"direction": "to_country_of_origin"}


async def test_a_claim_and_a_return_at_once_never_leave_a_return_over_a_pending_claim(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    unhcr_side = await factory.user("PNP", Role.caseworker)
    for _ in range(5):
        case = await foreign_case(client, police)
        await consent(client, police, case["id"], ["repatriation"])

        lodged, planned = await asyncio.gather(
            claim(client, unhcr_side, case["id"], "pending", "2026-03-20"),
            plan(client, police, case["id"], **RETURN),
        )

        assert lodged.status_code == 201, lodged.text
        listed = await client.get(f"/v1/cases/{case['id']}/repatriations", headers=police.headers)
        if planned.status_code == 201:  # planned first: the claim cancelled it
            assert [(r["status"], r["cancel_reason"]) for r in listed.json()] == [
                ("cancelled", "asylum_claim")
            ]
        else:  # the claim first: the return was refused
            assert planned.json()["code"] == "non_refoulement"
            assert listed.json() == []


async def test_a_claim_and_an_arrival_at_once_either_closes_the_case_or_cancels_the_return(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    other = await factory.user("PNP", Role.caseworker)
    for _ in range(5):
        case = await foreign_case(client, police)
        await consent(client, police, case["id"], ["repatriation"])
        planned = (await plan(client, police, case["id"], **RETURN)).json()

        lodged, arrived = await asyncio.gather(
            claim(client, other, case["id"], "pending", "2026-03-20"),
            arrive(client, police, planned["id"]),
        )

        assert lodged.status_code == 201, lodged.text
        status = (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()
        after = (
            await client.get(f"/v1/repatriations/{planned['id']}", headers=police.headers)
        ).json()
        if arrived.status_code == 200:  # she had arrived before the claim was recorded
            assert (status["status"], after["status"]) == ("closed", "arrived")
        else:
            assert arrived.json()["code"] == "repatriation_not_planned"
            assert status["status"] != "closed"
            assert (after["status"], after["cancel_reason"]) == ("cancelled", "asylum_claim")


async def test_two_repatriations_planned_at_once_leave_one(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)

    answers = await asyncio.gather(
        plan(client, consulate, case["id"], **home_body()),
        plan(client, consulate, case["id"], **home_body(arrival_region="15")),
    )
    listed = await client.get(f"/v1/cases/{case['id']}/repatriations", headers=consulate.headers)

    assert sorted(a.status_code for a in answers) == [201, 409]
    assert [a.json()["code"] for a in answers if a.status_code == 409] == [
        "repatriation_already_planned"
    ]
    assert [r["status"] for r in listed.json()] == ["planned"]
