"""Court-ordered restitution: payments, the balance, the unpaid-order alert, and the access
rule."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from service.core.db import Database
from service.core.settings import Settings
from service.identity.rules import Role
from service.legal import service as legal_service
from tests.legal.helpers import (
    alerts,
    audit_actions,
    bring_to_trial,
    open_proceeding,
)
from tests.support.factories import Factory, SignedInUser, create_case

ORDERED_ON = "2026-10-01"


async def _order(
    client: httpx.AsyncClient, court: SignedInUser, proceeding_id: str, case_id: str, amount: str
) -> httpx.Response:
    return await client.post(
        f"/v1/proceedings/{proceeding_id}/restitution-orders",
        json={"case_id": case_id, "amount_soles": amount, "ordered_on": ORDERED_ON},
        headers=court.headers,
    )


async def _pay(
    client: httpx.AsyncClient, user: SignedInUser, order_id: str, amount: str
) -> httpx.Response:
    return await client.post(
        f"/v1/restitution-orders/{order_id}/payments",
        json={"amount_soles": amount, "received_on": "2026-10-15"},
        headers=user.headers,
    )


async def _at_trial(
    client: httpx.AsyncClient, factory: Factory
) -> tuple[SignedInUser, SignedInUser, SignedInUser, dict[str, Any], dict[str, Any]]:
    """A prosecutor, the court, a public defender of the victim, the victim's case, and a
    proceeding about it at trial."""
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    defender = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, prosecutor)
    assigned = await client.post(
        f"/v1/cases/{case['id']}/legal-aid",
        json={"defender_id": str(defender.actor.user_id)},
        headers=prosecutor.headers,
    )
    assert assigned.status_code == 201, assigned.text
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    await bring_to_trial(client, prosecutor, proceeding["id"])
    return prosecutor, court, defender, case, proceeding


async def _sweep(db: Database, *, today: date, days: int = 90) -> int:
    async with db.session() as session:
        return await legal_service.alert_unpaid_restitution(session, today=today, days=days)


def test_unpaid_restitution_alerts_after_ninety_days_unless_configured() -> None:
    assert Settings.model_fields["restitution_alert_days"].default == 90
    assert Settings(restitution_alert_days=30).restitution_alert_days == 30


async def test_payments_reduce_the_balance_and_none_may_exceed_it(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    prosecutor, court, defender, case, proceeding = await _at_trial(client, factory)

    by_prosecutor = await _order(client, prosecutor, proceeding["id"], case["id"], "1000.00")
    ordered = await _order(client, court, proceeding["id"], case["id"], "1000.00")
    order_id = ordered.json()["id"]
    first = await _pay(client, defender, order_id, "400.50")
    too_much = await _pay(client, defender, order_id, "599.51")
    rest = await _pay(client, court, order_id, "599.50")
    nothing_left = await _pay(client, defender, order_id, "0.01")
    listed = await client.get(f"/v1/cases/{case['id']}/restitution", headers=defender.headers)

    assert by_prosecutor.status_code == 403
    assert by_prosecutor.json()["code"] == "court_only"
    assert ordered.status_code == 201, ordered.text
    assert ordered.json()["court"] == "PJ"
    assert ordered.json()["balance_soles"] == "1000.00"
    assert first.status_code == 201, first.text
    assert first.json()["paid_soles"] == "400.50"
    assert first.json()["balance_soles"] == "599.50"
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "payment_exceeds_balance"
    assert rest.status_code == 201, rest.text
    assert rest.json()["balance_soles"] == "0.00"
    assert nothing_left.status_code == 409
    [order] = listed.json()
    assert order["amount_soles"] == "1000.00"
    assert order["paid_soles"] == "1000.00"
    assert order["balance_soles"] == "0.00"
    assert [(p["amount_soles"], p["organization"]) for p in order["payments"]] == [
        ("400.50", "MINJUS"),
        ("599.50", "PJ"),
    ]
    actions = await audit_actions(db, case["id"])
    assert actions.count("restitution.ordered") == 1
    assert actions.count("restitution.payment_recorded") == 2


async def test_an_order_names_a_case_of_the_proceeding_and_a_positive_amount(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor, court, _, case, proceeding = await _at_trial(client, factory)
    elsewhere = await create_case(client, prosecutor)

    not_linked = await _order(client, court, proceeding["id"], elsewhere["id"], "100.00")
    zero = await _order(client, court, proceeding["id"], case["id"], "0")
    fraction = await _order(client, court, proceeding["id"], case["id"], "10.005")

    assert not_linked.status_code == 422
    assert not_linked.json()["errors"][0]["field"] == "case_id"
    assert zero.status_code == 422
    assert fraction.status_code == 422


async def test_an_order_unpaid_after_the_configured_days_alerts_once_until_paid(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    _, court, defender, case, proceeding = await _at_trial(client, factory)
    ordered = await _order(client, court, proceeding["id"], case["id"], "300.00")
    order_id = ordered.json()["id"]
    await _pay(client, defender, order_id, "100.00")
    ordered_on = date.fromisoformat(ORDERED_ON)

    await _sweep(db, today=date(2026, 12, 29))  # 89 days after the order
    too_early = await alerts(client, defender, case["id"])
    await _sweep(db, today=date(2026, 12, 30))  # 90 days
    opened = await alerts(client, defender, case["id"])
    await _sweep(db, today=date(2027, 3, 1))
    still_one = await alerts(client, defender, case["id"])
    paid = await _pay(client, defender, order_id, "200.00")
    resolved = await alerts(client, defender, case["id"])

    assert (date(2026, 12, 30) - ordered_on).days == 90
    assert [a for a in too_early if a["kind"] == "restitution_unpaid"] == []
    assert [(a["kind"], a["status"]) for a in opened if a["kind"] == "restitution_unpaid"] == [
        ("restitution_unpaid", "open")
    ]
    assert len([a for a in still_one if a["kind"] == "restitution_unpaid"]) == 1
    assert paid.json()["balance_soles"] == "0.00"
    assert [a["status"] for a in resolved if a["kind"] == "restitution_unpaid"] == ["resolved"]
    # A paid order never alerts again.
    await _sweep(db, today=date(2027, 6, 1))
    after = await alerts(client, defender, case["id"])
    assert [a["status"] for a in after if a["kind"] == "restitution_unpaid"] == ["resolved"]


async def test_restitution_is_hidden_from_organizations_not_involved_and_from_analysts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, court, _, case, proceeding = await _at_trial(client, factory)
    ordered = await _order(client, court, proceeding["id"], case["id"], "50.00")
    outsider = await factory.user("MIMP", Role.caseworker)
    analyst = await factory.user("MIMP", Role.analyst)

    payment = await _pay(client, outsider, ordered.json()["id"], "10.00")
    listed = await client.get(f"/v1/cases/{case['id']}/restitution", headers=outsider.headers)

    assert payment.status_code == 404
    assert payment.json()["code"] == "restitution_order_not_found"
    assert listed.status_code == 404
    assert listed.json()["code"] == "case_not_found"
    assert (await _pay(client, analyst, ordered.json()["id"], "10.00")).status_code == 403
    analyst_list = await client.get(f"/v1/cases/{case['id']}/restitution", headers=analyst.headers)
    assert analyst_list.status_code == 403
