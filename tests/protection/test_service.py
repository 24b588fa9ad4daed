"""Long custody raises its alert again: the escalation sweep, on back-dated custody."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from service.protection import service as protection_service
from tests.support.factories import Factory, SignedInUser, create_case, person_body

MINOR_HOURS, ADULT_HOURS = 24, 72


async def _held(
    client: httpx.AsyncClient,
    police: SignedInUser,
    *,
    age: int,
    hours: float,
    place: str = "police_station",
    ended_hours_ago: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case whose person, aged `age`, has been held for `hours` (ended if told when)."""
    case = await create_case(client, police, person=person_body(age_estimate=age))
    body: dict[str, Any] = {
        "place_kind": place,
        "start": (utcnow() - timedelta(hours=hours)).isoformat(),
    }
    if ended_hours_ago is not None:
        body["end"] = (utcnow() - timedelta(hours=ended_hours_ago)).isoformat()
    custody = await client.post(
        f"/v1/cases/{case['id']}/custody-periods", json=body, headers=police.headers
    )
    assert custody.status_code == 201, custody.text
    return case, custody.json()


async def _escalate(db: Database, *, now: datetime | None = None, limit: int = 200) -> int:
    """Run the sweep until it has nothing left, as the periodic sweep does."""
    total = 0
    while True:
        async with db.session() as session:
            escalated = await protection_service.escalate_long_custody(
                session,
                now=now or utcnow(),
                minor_hours=MINOR_HOURS,
                adult_hours=ADULT_HOURS,
                limit=limit,
            )
        total += escalated
        if escalated < limit:
            return total


async def _alerts(
    client: httpx.AsyncClient, user: SignedInUser, case: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/alerts",
        params={"case_id": case["id"], "status": ["open", "acknowledged", "resolved"]},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_child_held_30_hours_raises_her_alert_again_and_one_held_2_hours_does_not(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    auditor = await factory.user("MIMP", Role.auditor)
    long_case, long_custody = await _held(client, police, age=15, hours=30)
    short_case, _ = await _held(client, police, age=15, hours=2)

    escalated = await _escalate(db)
    [long_alert] = await _alerts(client, police, long_case)
    [short_alert] = await _alerts(client, police, short_case)
    events = (
        await client.get(
            "/v1/audit/events",
            params={"entity_id": long_case["id"], "action": "alert.escalated"},
            headers=auditor.headers,
        )
    ).json()["items"]

    assert escalated >= 1
    assert (long_alert["kind"], long_alert["source_id"]) == ("minor_in_custody", long_custody["id"])
    assert (long_alert["status"], long_alert["escalation_level"]) == ("open", 1)
    assert long_alert["escalated_at"] is not None
    assert [e["changes"]["escalation_level"] for e in events] == [{"from": 0, "to": 1}]
    assert (short_alert["escalation_level"], short_alert["escalated_at"]) == (0, None)


async def test_an_adult_held_80_hours_gets_a_long_custody_alert(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    adult_case, adult_custody = await _held(client, police, age=34, hours=80)
    recent_case, _ = await _held(client, police, age=34, hours=30)
    elsewhere_case, _ = await _held(client, police, age=34, hours=80, place="other")

    await _escalate(db)
    [alert] = await _alerts(client, police, adult_case)
    [elsewhere] = await _alerts(client, police, elsewhere_case)

    assert (alert["kind"], alert["source_id"]) == ("long_custody", adult_custody["id"])
    assert (alert["status"], alert["escalation_level"]) == ("open", 1)
    assert elsewhere["kind"] == "long_custody"
    assert await _alerts(client, police, recent_case) == []


async def test_a_child_held_80_hours_reaches_the_second_level_and_is_open_again(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case, custody = await _held(client, police, age=16, hours=50)
    await _escalate(db)
    [alert] = await _alerts(client, police, case)
    acknowledged = await client.post(
        f"/v1/alerts/{alert['id']}/acknowledge", headers=police.headers
    )

    # 30 hours later she is still held: past the limit for anyone.
    await _escalate(db, now=utcnow() + timedelta(hours=30))
    [again] = await _alerts(client, police, case)

    assert alert["escalation_level"] == 1
    assert acknowledged.json()["status"] == "acknowledged"
    assert (again["id"], again["source_id"]) == (alert["id"], custody["id"])
    assert (again["status"], again["escalation_level"]) == ("open", 2)


async def test_running_the_sweep_twice_escalates_nothing_the_second_time(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    child_case, _ = await _held(client, police, age=15, hours=30)
    adult_case, _ = await _held(client, police, age=40, hours=80)
    now = utcnow()

    first = await _escalate(db, now=now)
    after_first = [await _alerts(client, police, c) for c in (child_case, adult_case)]
    second = await _escalate(db, now=now)
    after_second = [await _alerts(client, police, c) for c in (child_case, adult_case)]

    assert first >= 2
    assert second == 0
    assert after_second == after_first
    assert [[a["escalation_level"] for a in alerts] for alerts in after_second] == [[1], [1]]


async def test_the_sweep_works_in_batches_of_its_limit(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    cases = [(await _held(client, police, age=15, hours=30 + i))[0] for i in range(3)]
    now = utcnow()

    batches = []
    while True:
        async with db.session() as session:
            escalated = await protection_service.escalate_long_custody(
                session, now=now, minor_hours=MINOR_HOURS, adult_hours=ADULT_HOURS, limit=1
            )
        if not escalated:
            break
        batches.append(escalated)

    assert set(batches) == {1}
    assert len(batches) >= 3
    for case in cases:
        [alert] = await _alerts(client, police, case)
        assert alert["escalation_level"] == 1


async def test_a_custody_that_has_ended_is_not_escalated(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    # Entered after the fact: 30 hours in a police station, ended an hour ago.
    recorded_ended, _ = await _held(client, police, age=15, hours=31, ended_hours_ago=1)
    adult_ended, _ = await _held(client, police, age=40, hours=90, ended_hours_ago=1)
    # Held 30 hours, then released.
    released_case, released = await _held(client, police, age=15, hours=30)
    ended = await client.post(
        f"/v1/custody-periods/{released['id']}/end",
        json={"end": utcnow().isoformat()},
        headers=police.headers,
    )

    await _escalate(db)
    [released_alert] = await _alerts(client, police, released_case)

    assert ended.status_code == 200, ended.text
    assert await _alerts(client, police, recorded_ended) == []
    assert await _alerts(client, police, adult_ended) == []
    assert (released_alert["status"], released_alert["escalation_level"]) == ("resolved", 0)


async def test_ending_a_long_custody_resolves_its_alert(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case, custody = await _held(client, police, age=40, hours=80)
    await _escalate(db)

    ended = await client.post(
        f"/v1/custody-periods/{custody['id']}/end",
        json={"end": utcnow().isoformat()},
        headers=police.headers,
    )
    [alert] = await _alerts(client, police, case)

    assert ended.status_code == 200, ended.text
    assert (alert["kind"], alert["status"]) == ("long_custody", "resolved")
