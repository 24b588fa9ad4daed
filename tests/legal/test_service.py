"""The missing-defender alert: a case in care too long without a public defender."""

from __future__ import annotations

from datetime import timedelta

import httpx

from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.legal import service as legal_service
from tests.legal.helpers import alerts, audit_actions, backdate_care, put_in_care
from tests.support.factories import Factory, create_case

DAYS = 7


async def _sweep(db: Database, *, days: int = DAYS) -> int:
    async with db.session() as session:
        return await legal_service.alert_cases_without_defender(session, now=utcnow(), days=days)


def test_the_alert_waits_seven_days_unless_configured() -> None:
    assert Settings.model_fields["legal_aid_alert_days"].default == DAYS
    assert Settings(legal_aid_alert_days=3).legal_aid_alert_days == 3


async def test_a_case_in_care_without_defender_is_alerted_once_and_an_assignment_resolves_it(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    overdue = await create_case(client, police)
    recent = await create_case(client, police)
    for case in (overdue, recent):
        await put_in_care(client, police, case["id"])
    await backdate_care(db, overdue["id"], utcnow() - timedelta(days=DAYS, hours=1))
    await backdate_care(db, recent["id"], utcnow() - timedelta(days=DAYS - 1))

    opened = await _sweep(db)
    again = await _sweep(db)
    open_alerts = await alerts(client, police, overdue["id"])
    recent_alerts = await alerts(client, police, recent["id"])

    assert opened >= 1
    assert again == 0
    assert [a["kind"] for a in open_alerts] == ["no_defender"]
    assert recent_alerts == []

    assigned = await client.post(
        f"/v1/cases/{overdue['id']}/legal-aid",
        json={"defender_id": str(defender.actor.user_id)},
        headers=police.headers,
    )
    assert assigned.status_code == 201, assigned.text
    after = await alerts(client, police, overdue["id"])
    assert [(a["kind"], a["status"]) for a in after] == [("no_defender", "resolved")]
    actions = await audit_actions(db, overdue["id"])
    assert actions.count("alert.opened") == 1
    assert actions.count("alert.resolved") == 1

    # With a defender, nothing is alerted again.
    assert await _sweep(db) == 0


async def test_an_alert_resolved_by_hand_is_not_reopened_for_the_same_stay_in_care(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await put_in_care(client, police, case["id"])
    await backdate_care(db, case["id"], utcnow() - timedelta(days=DAYS * 2))
    assert await _sweep(db) >= 1
    [alert] = await alerts(client, police, case["id"])
    resolved = await client.post(f"/v1/alerts/{alert['id']}/resolve", headers=police.headers)
    assert resolved.status_code == 200, resolved.text

    assert await _sweep(db) == 0
    assert [a["status"] for a in await alerts(client, police, case["id"])] == ["resolved"]
