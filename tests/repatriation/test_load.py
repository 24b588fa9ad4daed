"""Non-refoulement from several processes against a real multi-worker server: asylum claims
and returns to the country of origin arriving together for the same people never leave a
return planned over a pending claim."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.core.security import Security
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import open_database
from tests.repatriation.helpers import TRAVEL_ON, foreign_body
from tests.support.databases import query
from tests.support.factories import Factory
from tests.support.load import post_from_processes, running_server

pytestmark = pytest.mark.slow

CASES = 12
PROCESSES = 4


async def test_claims_and_returns_from_several_processes_never_leave_a_return_standing(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    factory = Factory(db, Security.from_settings(fresh_settings))
    police = await factory.user("PNP", Role.identifier)
    headers = {"Authorization": f"Bearer {police.token}"}

    with running_server(fresh_settings, workers=4) as url:
        case_ids = []
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
            for _ in range(CASES):
                created = await client.post("/v1/cases", json=foreign_body())
                assert created.status_code == 201, created.text
                case_id = created.json()["id"]
                consent = await client.post(
                    f"/v1/cases/{case_id}/consents",
                    json={"purposes": ["repatriation"], "language": "es"},
                )
                assert consent.status_code == 201, consent.text
                case_ids.append(case_id)
        requests = []
        for case_id in case_ids:
            requests.append(
                (
                    f"/v1/cases/{case_id}/repatriations",
                    {"direction": "to_country_of_origin", "travel_on": TRAVEL_ON},
                )
            )
            requests.append(
                (
                    f"/v1/cases/{case_id}/asylum-claim",
                    {"status": "pending", "effective_on": "2026-03-20"},
                )
            )
        answers = await asyncio.to_thread(
            post_from_processes,
            url,
            police.token,
            requests,
            processes=PROCESSES,
            concurrency=len(requests) // PROCESSES,  # every request in flight at once
        )

    claims = [(status, body) for status, body in answers if "current" in body]
    returns = [(status, body) for status, body in answers if "current" not in body]
    assert len(claims) == CASES, answers
    assert all(status == 201 for status, _ in claims), claims
    assert all(body["current"]["status"] == "pending" for _, body in claims)
    assert {status for status, _ in returns} <= {201, 409}, returns
    assert {body["code"] for status, body in returns if status == 409} <= {"non_refoulement"}
    # Every return planned before its claim was cancelled by it; none is left planned.
    [(standing,)] = await query(db, "SELECT count(*) FROM repatriation WHERE status = 'planned'")
    [(cancelled,)] = await query(
        db,
        "SELECT count(*) FROM repatriation WHERE status = 'cancelled'"
        " AND cancel_reason = 'asylum_claim'",
    )
    assert standing == 0
    assert cancelled == sum(status == 201 for status, _ in returns)
    await db.dispose()
