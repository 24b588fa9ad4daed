"""The tables of the proceedings: defendants by charge and outcome (P1), convictions by
prison term with the sentences below the legal minimum and the reduced charges (P2), and the
restitution ordered and paid to victims (P3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from service.core.time import utcnow
from service.identity.rules import Role
from service.stats.catalogue import CATALOGUE, ExclusionReason, Measure, breakdown
from service.stats.counting import Scope, TrueTable, count_table
from tests.legal.helpers import add_defendant, bring_to_trial, open_proceeding, record_outcome
from tests.stats.conftest import World
from tests.support.factories import create_case, person_body


async def _count(world: World, code: str) -> TrueTable:
    spec = CATALOGUE[code]
    async with world.db.session(write=False) as session:
        return await count_table(
            session,
            spec=spec,
            dimensions=breakdown(spec, None),
            scope=Scope(start=date(2026, 1, 1), end=date(2026, 12, 31), known_on=utcnow()),
        )


@pytest.fixture(scope="module")
async def ring(world: World) -> None:
    """One ring, two victims (a girl of 15 and a woman who consented to statistics), three
    defendants: one convicted below the minimum, one on a reduced charge, one pending."""
    client = world.client
    prosecutor = await world.factory.user("MP", Role.caseworker)
    court = await world.factory.user("PJ", Role.caseworker)
    girl = await create_case(client, prosecutor, identified_on="2026-03-20")
    woman = await create_case(
        client, prosecutor, identified_on="2026-03-20", person=person_body(age_estimate=30)
    )
    consent = await client.post(
        f"/v1/cases/{woman['id']}/consents",
        json={"purposes": ["statistics"], "language": "es"},
        headers=prosecutor.headers,
    )
    assert consent.status_code == 201, consent.text
    proceeding = await open_proceeding(
        client, prosecutor, [(girl["id"], "2026-03-01"), (woman["id"], "2026-03-01")]
    )
    first = await add_defendant(client, prosecutor, proceeding["id"])
    second = await add_defendant(client, prosecutor, proceeding["id"], public_official=True)
    await add_defendant(client, prosecutor, proceeding["id"], "pimping")
    await bring_to_trial(client, prosecutor, proceeding["id"])
    convicted: list[dict[str, Any]] = [
        {"charge": "trafficking", "sentence": {"years": 10, "months": 0}},
        {"charge": "pimping", "sentence": {"years": 3, "months": 0}},
    ]
    for defendant, body in zip((first, second), convicted, strict=True):
        response = await record_outcome(client, court, defendant["id"], outcome="convicted", **body)
        assert response.status_code == 200, response.text
    for case, amount, paid in ((woman, "20000.00", "5000.00"), (girl, "1000.00", None)):
        order = await client.post(
            f"/v1/proceedings/{proceeding['id']}/restitution-orders",
            json={"case_id": case["id"], "amount_soles": amount, "ordered_on": "2026-10-02"},
            headers=court.headers,
        )
        assert order.status_code == 201, order.text
        if paid:
            payment = await client.post(
                f"/v1/restitution-orders/{order.json()['id']}/payments",
                json={"amount_soles": paid, "received_on": "2026-10-15"},
                headers=court.headers,
            )
            assert payment.status_code == 201, payment.text


@pytest.mark.usefixtures("ring")
async def test_defendants_by_charge_and_outcome(world: World) -> None:
    table = await _count(world, "P1")

    assert table.unit == "defendants"
    assert table.cells == {
        ("trafficking", "convicted"): 1,
        ("pimping", "convicted"): 1,  # filed as trafficking, convicted of pimping
        ("pimping", "ongoing"): 1,
    }
    assert table.total == 3
    assert table.measures[Measure.proceedings] == 1


@pytest.mark.usefixtures("ring")
async def test_convictions_below_the_minimum_and_reduced_charges(world: World) -> None:
    by_band = await _count(world, "P2")
    spec = CATALOGUE["P2"]
    async with world.db.session(write=False) as session:
        reduced = await count_table(
            session,
            spec=spec,
            dimensions=breakdown(spec, (CATALOGUE["P2"].dimensions[2],)),
            scope=Scope(start=date(2026, 1, 1), end=date(2026, 12, 31), known_on=utcnow()),
        )

    # 10 years when the youngest victim was 15 (minimum 12): below the legal minimum.
    assert by_band.cells == {("8-11", "yes"): 1, ("under 6", "no"): 1}
    assert reduced.cells == {("no",): 1, ("yes",): 1}


@pytest.mark.usefixtures("ring")
async def test_restitution_ordered_and_paid_to_victims_who_may_be_counted(world: World) -> None:
    table = await _count(world, "P3")

    assert table.cells == {("partly_paid", "adult", "female"): 1}
    assert table.measures[Measure.ordered_soles] == 20000.0
    assert table.measures[Measure.paid_soles] == 5000.0
    assert table.excluded[ExclusionReason.no_consent_or_basis] == 1  # the girl
