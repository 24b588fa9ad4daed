"""Many writers holding the same ETag, from several processes against a real 4-worker
server: exactly one correction lands, every other writer is told 412, and only the winner's
change is stored and audited."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from service.core.security import Security
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import open_database
from tests.support.databases import query
from tests.support.factories import Factory, case_body
from tests.support.load import running_server, send_from_processes

pytestmark = pytest.mark.slow

WRITERS = 24
PROCESSES = 4


async def test_simultaneous_patches_with_one_etag_leave_exactly_one_change(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    factory = Factory(db, Security.from_settings(fresh_settings))
    police = await factory.user("PNP", Role.identifier)

    with running_server(fresh_settings, workers=4) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=police.headers) as client:
            created = await client.post("/v1/cases", json=case_body())
            assert created.status_code == 201, created.text
            case_id = created.json()["id"]
            etag = (await client.get(f"/v1/cases/{case_id}")).headers["ETag"]
        requests = [
            (
                "PATCH",
                f"/v1/cases/{case_id}",
                {"current_location": f"Albergue {n}"},
                {"If-Match": etag},
            )
            for n in range(WRITERS)
        ]
        answers = await asyncio.to_thread(
            send_from_processes, url, police.token, requests, processes=PROCESSES
        )
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=police.headers) as client:
            stored = await client.get(f"/v1/cases/{case_id}")

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [412] * (WRITERS - 1), answers
    [winner] = [body for status, body in answers if status == 200]
    assert stored.json()["current_location"] == winner["current_location"]
    rows = await query(
        db,
        "SELECT changes FROM audit_event WHERE entity_id = :id AND action = 'case.updated'",
        id=case_id,
    )
    audited = [(c if isinstance(c, dict) else json.loads(c))["current_location"] for (c,) in rows]
    # Only the winner's change audited (that it changed: the text is sealed, never audited).
    assert audited == [{"changed": True}]
    await db.dispose()
