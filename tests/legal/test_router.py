"""Public defenders and interviews through HTTP: the access rule, one active defender, and
the single interview."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from service.legal.models import LegalAidAssignment
from tests.legal.helpers import alerts, audit_actions
from tests.support.databases import query
from tests.support.factories import Factory, create_case


async def _assign(
    client: httpx.AsyncClient, headers: dict[str, str], case_id: str, defender_id: uuid.UUID
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/legal-aid", json={"defender_id": str(defender_id)}, headers=headers
    )


async def test_a_defender_sees_the_case_while_assigned_and_not_after(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, police)
    before = await client.get(f"/v1/cases/{case['id']}", headers=defender.headers)

    assigned = await _assign(client, police.headers, case["id"], defender.actor.user_id)
    during = await client.get(f"/v1/cases/{case['id']}", headers=defender.headers)
    listed = await client.get(f"/v1/cases/{case['id']}/legal-aid", headers=defender.headers)
    ended = await client.post(
        f"/v1/legal-aid/{assigned.json()['id']}/end",
        json={"reason": "defender_unavailable"},
        headers=police.headers,
    )
    after = await client.get(f"/v1/cases/{case['id']}", headers=defender.headers)
    end_again = await client.post(
        f"/v1/legal-aid/{assigned.json()['id']}/end",
        json={"reason": "replaced"},
        headers=defender.headers,
    )

    assert before.status_code == 404
    assert before.json()["code"] == "case_not_found"
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["organization"] == "MINJUS"
    assert assigned.json()["active"] is True
    assert during.status_code == 200
    assert [a["id"] for a in listed.json()] == [assigned.json()["id"]]
    assert ended.status_code == 200, ended.text
    assert ended.json()["active"] is False
    assert ended.json()["end_reason"] == "defender_unavailable"
    assert after.status_code == 404
    assert after.json()["code"] == "case_not_found"
    assert end_again.status_code == 404
    assert end_again.json()["code"] == "legal_aid_not_found"
    actions = await audit_actions(db, case["id"])
    assert actions.count("legal_aid.assigned") == 1
    assert actions.count("legal_aid.ended") == 1
    assert "case.involvement_started" in actions
    assert "case.involvement_ended" in actions


async def test_a_case_has_one_active_defender_and_keeps_the_history(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    first = await factory.user("MINJUS", Role.legal_aid)
    second = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, police)

    one = await _assign(client, police.headers, case["id"], first.actor.user_id)
    two = await _assign(client, police.headers, case["id"], second.actor.user_id)
    ended = await client.post(
        f"/v1/legal-aid/{one.json()['id']}/end", json={"reason": "replaced"}, headers=police.headers
    )
    replaced = await _assign(client, police.headers, case["id"], second.actor.user_id)
    history = await client.get(f"/v1/cases/{case['id']}/legal-aid", headers=police.headers)

    assert one.status_code == 201
    assert two.status_code == 409
    assert two.json()["code"] == "legal_aid_already_assigned"
    assert ended.status_code == 200
    assert replaced.status_code == 201
    assert [(a["defender_id"], a["active"]) for a in history.json()] == [
        (str(first.actor.user_id), False),
        (str(second.actor.user_id), True),
    ]


async def test_the_database_refuses_a_second_active_defender(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, police)
    assert (await _assign(client, police.headers, case["id"], defender.actor.user_id)).is_success

    async def assign_behind_the_api() -> None:
        async with db.session() as session:
            session.add(
                LegalAidAssignment(
                    case_id=uuid.UUID(case["id"]),
                    defender_id=defender.actor.user_id,
                    organization_id=defender.actor.organization_id,
                    assigned_by=police.actor.user_id,
                )
            )
            await session.flush()

    with pytest.raises(sa.exc.IntegrityError):
        await assign_behind_the_api()


async def test_two_defenders_assigned_at_once_one_wins(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    first = await factory.user("MINJUS", Role.legal_aid)
    second = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, police)

    answers = await asyncio.gather(
        _assign(client, police.headers, case["id"], first.actor.user_id),
        _assign(client, police.headers, case["id"], second.actor.user_id),
    )
    history = await client.get(f"/v1/cases/{case['id']}/legal-aid", headers=police.headers)

    assert sorted(a.status_code for a in answers) == [201, 409]
    assert [a.json()["code"] for a in answers if a.status_code == 409] == [
        "legal_aid_already_assigned"
    ]
    assert [a["active"] for a in history.json()] == [True]


async def test_only_a_public_defender_can_be_assigned(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    caseworker = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)

    not_defender = await _assign(client, police.headers, case["id"], caseworker.actor.user_id)
    nobody = await _assign(client, police.headers, case["id"], uuid.uuid4())
    history = await client.get(f"/v1/cases/{case['id']}/legal-aid", headers=police.headers)

    assert not_defender.status_code == nobody.status_code == 422
    assert not_defender.json()["code"] == nobody.json()["code"] == "not_a_defender"
    assert history.json() == []


async def test_uninvolved_organizations_get_404_and_analysts_403(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    outsider = await factory.user("MIMP", Role.caseworker)
    analyst = await factory.user("MIMP", Role.analyst)
    case = await create_case(client, police)
    assignment = await _assign(client, police.headers, case["id"], defender.actor.user_id)
    cid = case["id"]
    interview = {"conducted_at": utcnow().isoformat(), "purpose": "complaint"}
    calls = [
        ("POST", f"/v1/cases/{cid}/legal-aid", {"defender_id": str(defender.actor.user_id)}),
        ("GET", f"/v1/cases/{cid}/legal-aid", None),
        ("POST", f"/v1/legal-aid/{assignment.json()['id']}/end", {"reason": "replaced"}),
        ("POST", f"/v1/cases/{cid}/interviews", interview),
        ("GET", f"/v1/cases/{cid}/interviews", None),
    ]
    expected_404 = [
        "case_not_found",
        "case_not_found",
        "legal_aid_not_found",
        "case_not_found",
        "case_not_found",
    ]
    for (method, url, body), code in zip(calls, expected_404, strict=True):
        uninvolved = await client.request(method, url, json=body, headers=outsider.headers)
        assert (uninvolved.status_code, uninvolved.json()["code"]) == (404, code), url
        refused = await client.request(method, url, json=body, headers=analyst.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), url
    # Nothing was written by the refused calls: the assignment is still the only one, active.
    history = await client.get(f"/v1/cases/{cid}/legal-aid", headers=police.headers)
    assert [a["active"] for a in history.json()] == [True]


async def test_a_second_interview_needs_a_justification_and_opens_an_alert(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    url = f"/v1/cases/{case['id']}/interviews"
    when = (utcnow() - timedelta(days=2)).isoformat()
    secret = f"Rosa contradijo su declaración {uuid.uuid4().hex}"

    first = await client.post(
        url,
        json={"conducted_at": when, "purpose": "complaint", "gesell_chamber": True},
        headers=police.headers,
    )
    unjustified = await client.post(
        url,
        json={"conducted_at": utcnow().isoformat(), "purpose": "testimony"},
        headers=police.headers,
    )
    no_alert_yet = await alerts(client, police, case["id"])
    second = await client.post(
        url,
        json={
            "conducted_at": utcnow().isoformat(),
            "purpose": "testimony",
            "justification": secret,
        },
        headers=police.headers,
    )
    listed = await client.get(url, headers=police.headers)
    opened = await alerts(client, police, case["id"])

    assert first.status_code == 201, first.text
    assert first.json()["repeated"] is False
    assert first.json()["gesell_chamber"] is True
    assert unjustified.status_code == 422
    assert unjustified.json()["code"] == "invalid_input"
    assert unjustified.json()["errors"][0]["field"] == "justification"
    assert no_alert_yet == []
    assert second.status_code == 201, second.text
    assert second.json()["repeated"] is True
    assert second.json()["has_justification"] is True
    assert "justification" not in second.json()
    assert [(i["purpose"], i["repeated"]) for i in listed.json()] == [
        ("complaint", False),
        ("testimony", True),
    ]
    assert [(a["kind"], a["source_id"]) for a in opened] == [
        ("repeated_interview", second.json()["id"])
    ]
    actions = await audit_actions(db, case["id"])
    assert actions.count("interview.recorded") == 2
    assert "alert.opened" in actions

    # The justification may identify the person: it is nowhere in clear, neither in the
    # interview table nor in the audit trail.
    rows = await query(db, "SELECT * FROM interview")
    dump = repr(rows).encode() + b"".join(v for row in rows for v in row if isinstance(v, bytes))
    assert secret.encode() not in dump
    assert b"contradijo" not in dump
    events = await query(db, "SELECT changes FROM audit_event WHERE entity_id = :id", id=case["id"])
    assert "contradijo" not in repr(events)
