"""GET /v1/audit/events: for auditors and administrators, filtered and paginated."""

from __future__ import annotations

from typing import Any

import httpx

from service.identity.rules import Role
from tests.support.factories import Factory, create_case, patch_case


async def test_auditor_follows_a_case_through_its_events(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    auditor = await factory.user("MIMP", Role.auditor)
    case = await create_case(client, police)
    await patch_case(client, police, case["id"], {"place": "otro"})

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"entity_type": "case", "entity_id": case["id"], "limit": 2}
    while True:
        page = await client.get("/v1/audit/events", params=params, headers=auditor.headers)
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        if not page.json().get("next_cursor"):
            break
        params["cursor"] = page.json()["next_cursor"]

    actions = [e["action"] for e in reversed(seen)]
    assert actions[0] == "case.created"
    assert set(actions) == {
        "case.created",
        "case.involvement_started",
        "identification.created",
        "identification.corrected",
    }
    assert all(e["actor_user_id"] == str(police.actor.user_id) for e in seen)
    assert len({e["id"] for e in seen}) == len(seen)
    assert all(e["request_id"] for e in seen)


async def test_filters_by_actor_action_and_time(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    admin = await factory.user("MIMP", Role.admin)
    await create_case(client, police)
    await create_case(client, police)

    by_actor = await client.get(
        "/v1/audit/events",
        params={"actor_user_id": str(police.actor.user_id), "action": "case.created"},
        headers=admin.headers,
    )
    future = await client.get(
        "/v1/audit/events",
        params={"actor_user_id": str(police.actor.user_id), "since": "2999-01-01T00:00:00Z"},
        headers=admin.headers,
    )
    naive = await client.get(
        "/v1/audit/events", params={"since": "2026-01-01T00:00:00"}, headers=admin.headers
    )

    assert [e["action"] for e in by_actor.json()["items"]] == ["case.created", "case.created"]
    assert future.json()["items"] == []
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "since"


async def test_case_workers_cannot_read_the_audit_trail(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    for role in (Role.caseworker, Role.analyst, Role.identifier):
        user = await factory.user("MIMP", role)
        response = await client.get("/v1/audit/events", headers=user.headers)
        assert response.status_code == 403
