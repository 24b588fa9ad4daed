"""Restitution payments from several processes against a real multi-worker server: together
they never pay more than was ordered."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from service.core.security import Security
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import open_database
from tests.support.databases import query
from tests.support.factories import Factory, case_body
from tests.support.load import post_from_processes, running_server

pytestmark = pytest.mark.slow

PAYMENTS = 24
PROCESSES = 4


async def _post(client: httpx.AsyncClient, token: str, path: str, body: object) -> str:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text
    answer: str = response.json().get("id", "")
    return answer


async def test_simultaneous_payments_never_exceed_the_order(fresh_settings: Settings) -> None:
    db = open_database(fresh_settings)
    factory = Factory(db, Security.from_settings(fresh_settings))
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)

    with running_server(fresh_settings, workers=4) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            case_id = await _post(client, prosecutor.token, "/v1/cases", case_body())
            proceeding_id = await _post(
                client,
                prosecutor.token,
                "/v1/proceedings",
                {
                    "complaint_number": "CF-LOAD-1",
                    "prosecutor_office": "FISTRAP-PUNO",
                    "complaint_filed_on": "2026-04-01",
                    "cases": [{"case_id": case_id, "offence_on": "2026-01-10"}],
                },
            )
            for step, on, extra in (
                ("investigation", "2026-04-10", {}),
                ("trial", "2026-06-01", {"court": "PJ"}),
            ):
                await _post(
                    client,
                    prosecutor.token,
                    f"/v1/proceedings/{proceeding_id}/status",
                    {"status": step, "effective_on": on, **extra},
                )
            order_id = await _post(
                client,
                court.token,
                f"/v1/proceedings/{proceeding_id}/restitution-orders",
                {"case_id": case_id, "amount_soles": "100.00", "ordered_on": "2026-10-01"},
            )
        payment = {"amount_soles": "10.00", "received_on": "2026-10-15"}
        answers = await asyncio.to_thread(
            post_from_processes,
            url,
            court.token,
            [(f"/v1/restitution-orders/{order_id}/payments", payment)] * PAYMENTS,
            processes=PROCESSES,
            concurrency=PAYMENTS // PROCESSES,  # every request in flight at once
        )

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 10 + [409] * (PAYMENTS - 10), answers
    assert {body["code"] for status, body in answers if status == 409} == {
        "payment_exceeds_balance"
    }
    [(paid,)] = await query(db, "SELECT sum(amount_soles) FROM restitution_payment")
    assert Decimal(str(paid)).quantize(Decimal("0.01")) == Decimal("100.00")
    await db.dispose()
