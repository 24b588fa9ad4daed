"""Repatriation and status dates that cannot be true are refused, each with its code."""

from __future__ import annotations

from datetime import timedelta

import httpx

from service.core.time import today
from service.identity.rules import Role
from tests.repatriation.helpers import abroad_case, arrive, claim, foreign_case, home_body, plan
from tests.support.factories import Factory


async def test_a_status_before_1990_or_in_the_future_is_refused_with_its_code(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)

    ancient = await claim(client, police, case["id"], "pending", "0001-01-01")
    ahead = await claim(client, police, case["id"], "pending", "2999-01-01")

    assert (ancient.status_code, ancient.json()["code"]) == (422, "date_too_early")
    assert (ahead.status_code, ahead.json()["code"]) == (422, "date_in_future")
    assert [e["field"] for e in ahead.json()["errors"]] == ["effective_on"]


async def test_a_journey_planned_years_ahead_or_an_arrival_tomorrow_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await abroad_case(client, consulate)

    far = await plan(
        client,
        consulate,
        case["id"],
        **home_body(),
        travel_on=(today() + timedelta(days=400)).isoformat(),
    )
    planned = await plan(client, consulate, case["id"], **home_body())
    assert planned.status_code == 201, planned.text
    tomorrow = await arrive(
        client,
        consulate,
        planned.json()["id"],
        arrived_on=(today() + timedelta(days=1)).isoformat(),
    )

    assert (far.status_code, far.json()["code"]) == (422, "date_too_late")
    assert [e["field"] for e in far.json()["errors"]] == ["travel_on"]
    assert (tomorrow.status_code, tomorrow.json()["code"]) == (422, "date_in_future")
    assert [e["field"] for e in tomorrow.json()["errors"]] == ["arrived_on"]
