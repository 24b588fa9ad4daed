"""Concurrent edits of a case: its ETag, If-Match required on PATCH, honoured on its actions."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from service.cases.exceptions import CaseNotFound
from service.cases.models import CaseFile
from service.cases.service.access import lock_case_for_change
from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, case_body, create_case, patch_case


async def _etag(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> str:
    response = await client.get(f"/v1/cases/{case_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


async def _patch(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, body: object, etag: str
) -> httpx.Response:
    return await client.patch(
        f"/v1/cases/{case_id}", json=body, headers={**user.headers, "If-Match": etag}
    )


async def _corrections(db: Database, case_id: str) -> list[dict[str, Any]]:
    rows = await query(
        db,
        "SELECT changes FROM audit_event WHERE entity_id = :id AND action = 'case.updated'",
        id=case_id,
    )
    return [c if isinstance(c, dict) else json.loads(c) for (c,) in rows]


async def test_case_etag_changes_with_each_change_of_the_case(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    colleague = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    seen = [await _etag(client, police, case["id"])]

    patched = await patch_case(client, police, case["id"], {"current_location": "Comisaría"})
    seen.append(patched.headers["ETag"])
    screened = await client.post(
        f"/v1/cases/{case['id']}/screenings",
        json={"victim_status": "confirmed"},
        headers=police.headers,
    )
    seen.append(screened.headers["ETag"])
    closed = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers=colleague.headers,
    )
    seen.append(closed.headers["ETag"])

    assert [patched.status_code, screened.status_code, closed.status_code] == [200, 201, 201]
    assert len(set(seen)) == 4, seen
    assert all(tag.startswith('"') for tag in seen), "strong tags, never W/"
    # Each action's answer carries the case's ETag as a later read sees it.
    assert await _etag(client, police, case["id"]) == seen[-1]


async def test_patch_without_if_match_is_refused_with_428_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    before = await _etag(client, police, case["id"])

    response = await client.patch(
        f"/v1/cases/{case['id']}", json={"current_location": "Lima"}, headers=police.headers
    )

    assert response.status_code == 428, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "precondition_required"
    after = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert after.headers["ETag"] == before
    assert after.json()["current_location"] != "Lima"
    assert await _corrections(db, case["id"]) == []


async def test_patch_with_a_stale_etag_is_refused_with_412_without_repeating_it(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    stale = await _etag(client, police, case["id"])
    first = await _patch(client, police, case["id"], {"current_location": "Puerto"}, stale)

    second = await _patch(client, police, case["id"], {"current_location": "Mazuko"}, stale)

    assert first.status_code == 200, first.text
    assert second.status_code == 412, second.text
    assert second.json()["code"] == "precondition_failed"
    assert stale not in second.text
    stored = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert stored.json()["current_location"] == "Puerto"
    # One correction audited: that the location changed, never the text.
    assert await _corrections(db, case["id"]) == [{"current_location": {"changed": True}}]


async def test_weak_unknown_or_other_resources_tags_never_match_and_star_does(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    other = await create_case(client, police)
    current = await _etag(client, police, case["id"])
    # The other case is at the same version, but its tag names it, not this one.
    borrowed = await _etag(client, police, other["id"])

    weak = await _patch(client, police, case["id"], {"is_witness": True}, f"W/{current}")
    garbage = await _patch(client, police, case["id"], {"is_witness": True}, "not-a-tag")
    foreign = await _patch(client, police, case["id"], {"is_witness": True}, borrowed)
    listed = await _patch(client, police, case["id"], {"is_witness": True}, f'"0", {current}')
    star = await _patch(client, police, case["id"], {"is_witness": False}, "*")

    assert [weak.status_code, garbage.status_code, foreign.status_code] == [412, 412, 412]
    assert [listed.status_code, star.status_code] == [200, 200]


async def test_two_writers_with_the_same_etag_one_wins_and_only_its_change_is_stored(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    colleague = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    # Both caseworkers read the case, then both correct it at once.
    etags = [await _etag(client, user, case["id"]) for user in (police, colleague)]
    assert etags[0] == etags[1]

    answers = await asyncio.gather(
        _patch(client, police, case["id"], {"current_location": "Albergue A"}, etags[0]),
        _patch(client, colleague, case["id"], {"current_location": "Albergue B"}, etags[1]),
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 412], [a.text for a in answers]
    [winner] = [a for a in answers if a.status_code == 200]
    stored = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert stored.json()["current_location"] == winner.json()["current_location"]
    assert stored.headers["ETag"] == winner.headers["ETag"]
    assert await _corrections(db, case["id"]) == [{"current_location": {"changed": True}}]


async def test_a_stale_if_match_on_a_case_action_is_refused_and_nothing_happens(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    stale = await _etag(client, police, case["id"])
    await patch_case(client, police, case["id"], {"current_location": "Cusco"})

    closed = await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers={**police.headers, "If-Match": stale},
    )

    assert closed.status_code == 412, closed.text
    stored = await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    assert stored.json()["status"] != "closed"


async def test_a_patch_that_changes_nothing_keeps_the_etag_and_records_nothing(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body()
    case = await create_case(client, police, **body)
    etag = await _etag(client, police, case["id"])
    events = await _events_of(db, case["id"])

    # Every field the case was created with, again: nothing changes.
    same = {
        "place": body["place"],
        "operation_ref": body["operation_ref"],
        "indicators": body["indicators"],
        "exploitation": body["exploitation"],
        "current_location": body["current_location"],
        "is_witness": False,
    }
    response = await _patch(client, police, case["id"], same, etag)

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == etag
    assert await _etag(client, police, case["id"]) == etag
    assert await _events_of(db, case["id"]) == events
    # The forms of exploitation were not superseded by the same forms again.
    stored_id = uuid.UUID(case["id"]).hex if db.dialect == "sqlite" else case["id"]
    superseded = await query(
        db,
        "SELECT count(*) FROM identification_exploitation e JOIN identification i"
        " ON i.id = e.identification_id WHERE i.case_id = :id AND e.superseded_at IS NOT NULL",
        id=stored_id,
    )
    assert superseded == [(0,)]

    # One field that does change moves the tag, and is the only change recorded.
    moved = await _patch(client, police, case["id"], {**same, "place": "Puerto Maldonado"}, etag)
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] != etag
    after = await _events_of(db, case["id"])
    new = [event for event in after if event not in events]
    assert [action for action, _ in new] == ["identification.corrected"]
    assert set(new[0][1]) == {"identification_id", "place"}


async def _events_of(db: Database, entity_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The audit events of an entity: (action, changes), in a stable order."""
    rows = await query(
        db, "SELECT action, changes FROM audit_event WHERE entity_id = :id", id=entity_id
    )
    events = [(a, c if isinstance(c, dict) else json.loads(c)) for a, c in rows]
    return sorted(events, key=lambda event: (event[0], json.dumps(event[1], sort_keys=True)))


async def test_a_case_gone_under_its_lock_is_refused_in_the_common_words(db: Database) -> None:
    # The case the route found is no longer there when its change locks it: the refusal is
    # every refusal of a case's, naming no id.
    gone = CaseFile(person_id=uuid.uuid4(), status="identified", victim_status="suspected")
    with pytest.raises(CaseNotFound) as refused:
        async with db.session() as session:
            await lock_case_for_change(session, gone, if_match=None)
    assert refused.value.detail == "No such case is visible to your organization."
    assert str(gone.id) not in str(refused.value.detail)
