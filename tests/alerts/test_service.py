"""Raising an alert again: its level, its status, its audit event."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from tests.support.factories import Factory, SignedInUser, create_case


async def _non_punishment_alert(
    client: httpx.AsyncClient, police: SignedInUser
) -> tuple[dict[str, Any], dict[str, Any]]:
    case = await create_case(client, police)
    record = await client.post(
        f"/v1/cases/{case['id']}/non-punishment-records",
        json={
            "measure": "detention",
            "offence": "irregular stay",
            "occurred_on": "2026-03-15",
            "authority": "Comisaría de Mazuko",
        },
        headers=police.headers,
    )
    assert record.status_code == 201, record.text
    [alert] = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]
    return case, alert


async def _escalate(db: Database, case: dict[str, Any], alert: dict[str, Any], level: int) -> bool:
    async with db.session() as session:
        raised = await alert_service.escalate_alert(
            session,
            actor=None,
            case_id=uuid.UUID(case["id"]),
            kind=AlertKind(alert["kind"]),
            source_id=uuid.UUID(alert["source_id"]),
            level=level,
            at=utcnow(),
            open_if_missing=False,
        )
    return raised is not None


async def test_an_acknowledged_alert_raised_again_is_open_once_per_level(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    auditor = await factory.user("MIMP", Role.auditor)
    case, alert = await _non_punishment_alert(client, police)
    await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=police.headers)

    raised = [await _escalate(db, case, alert, level) for level in (1, 1, 0)]
    [after] = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]
    events = (
        await client.get(
            "/v1/audit/events",
            params={"entity_id": case["id"], "action": "alert.escalated"},
            headers=auditor.headers,
        )
    ).json()["items"]

    assert raised == [True, False, False]
    assert (after["id"], after["status"], after["escalation_level"]) == (alert["id"], "open", 1)
    assert [e["changes"]["status"] for e in events] == [{"from": "acknowledged", "to": "open"}]


async def test_a_resolved_alert_is_not_raised_again(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case, alert = await _non_punishment_alert(client, police)
    resolved = await client.post(f"/v1/alerts/{alert['id']}/resolve", headers=police.headers)

    raised = await _escalate(db, case, alert, 1)
    after = (
        await client.get(
            "/v1/alerts",
            params={"case_id": case["id"], "status": ["open", "resolved"]},
            headers=police.headers,
        )
    ).json()["items"]

    assert resolved.json()["status"] == "resolved"
    assert raised is False
    assert [(a["status"], a["escalation_level"]) for a in after] == [("resolved", 0)]
