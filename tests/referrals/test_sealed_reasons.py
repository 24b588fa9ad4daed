"""A caseworker's free text about a victim (a referral's reason, a consent override's
justification) is sealed under the person's data key: never in the database, the audit or
a response in clear; the referral's two organizations read its reason back."""

from __future__ import annotations

import json
from typing import Any

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, create_case

MARKER = "Rosa Quispe, hermana en Juliaca"


def _db_uuid(db: Database, value: str) -> str:
    return value if db.dialect == "postgresql" else value.replace("-", "")


async def _consent(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, share_with: list[str]
) -> None:
    response = await client.post(
        f"/v1/cases/{case_id}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": share_with, "language": "es"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text


async def _refer(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, to: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": to, "purpose": "shelter", **extra},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _holds_marker(value: object) -> bool:
    if isinstance(value, bytes | memoryview):
        return MARKER.encode() in bytes(value)
    return MARKER in str(value)


async def _rows_holding_marker(db: Database, case_id: str) -> list[str]:
    """Which stored rows of the case hold the marker in clear, read as someone with database
    access would (every column, ciphertexts included)."""
    case = _db_uuid(db, case_id)
    tables = {
        "referral": await query(db, "SELECT * FROM referral WHERE case_id = :c", c=case),
        "referral_status_change": await query(
            db,
            "SELECT s.* FROM referral_status_change s JOIN referral r ON r.id = s.referral_id"
            " WHERE r.case_id = :c",
            c=case,
        ),
        "consent_override": await query(
            db, "SELECT * FROM consent_override WHERE case_id = :c", c=case
        ),
        "audit_event": await query(db, "SELECT * FROM audit_event"),
    }
    return [
        table
        for table, rows in tables.items()
        for row in rows
        if any(_holds_marker(value) for value in row)
    ]


async def test_a_rejection_reason_is_stored_sealed_and_read_back_by_both_parties_only(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    outsider = await factory.user("MINEDU", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = await _refer(client, police, case["id"], "MIMP")
    url = f"/v1/referrals/{referral['id']}"

    rejected = await client.post(f"{url}/reject", json={"reason": MARKER}, headers=mimp.headers)
    as_sender = await client.get(url, headers=police.headers)
    as_receiver = await client.get(url, headers=mimp.headers)
    outbox = await client.get(
        "/v1/referrals", params={"direction": "outgoing"}, headers=police.headers
    )
    as_outsider = await client.get(url, headers=outsider.headers)
    outsider_inbox = await client.get("/v1/referrals", headers=outsider.headers)

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["reason"] == MARKER
    assert as_sender.json()["reason"] == as_receiver.json()["reason"] == MARKER
    assert [r["reason"] for r in outbox.json()["items"] if r["id"] == referral["id"]] == [MARKER]
    assert as_outsider.status_code == 404
    assert as_outsider.json()["code"] == "referral_not_found"
    assert MARKER not in as_outsider.text
    assert outsider_inbox.json()["items"] == []
    assert await _rows_holding_marker(db, case["id"]) == []
    sealed = await query(
        db,
        "SELECT reason_code, reason_ciphertext FROM referral WHERE id = :r",
        r=_db_uuid(db, referral["id"]),
    )
    assert [(code, ciphertext is not None) for code, ciphertext in sealed] == [(None, True)]
    [(changes,)] = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'referral.rejected' AND entity_id = :c",
        c=case["id"],
    )
    # The event says that a reason was given, not what it says.
    assert (changes if isinstance(changes, dict) else json.loads(changes))["reason"] == {
        "changed": True
    }


async def test_a_cancellation_by_the_sender_keeps_its_reason_sealed(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = await _refer(client, police, case["id"], "MIMP")

    cancelled = await client.post(
        f"/v1/referrals/{referral['id']}/cancel", json={"reason": MARKER}, headers=police.headers
    )

    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("cancelled", MARKER)
    assert await _rows_holding_marker(db, case["id"]) == []


async def test_a_system_reason_is_kept_as_a_code_in_clear(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = await _refer(client, police, case["id"], "MIMP")
    refused = await client.post(
        f"/v1/cases/{case['id']}/consents",
        json={"refused": True, "language": "es"},
        headers=police.headers,
    )
    assert refused.status_code == 201, refused.text

    read = await client.get(f"/v1/referrals/{referral['id']}", headers=police.headers)
    stored = await query(
        db,
        "SELECT reason_code, reason_ciphertext FROM referral_status_change"
        " WHERE referral_id = :r AND to_status = 'cancelled'",
        r=_db_uuid(db, referral["id"]),
    )

    assert read.json()["reason"] == "consent_refused"
    assert stored == [("consent_refused", None)]


async def test_an_override_justification_is_sealed_and_returned_by_no_route(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    lawyer = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, lawyer)

    referral = await _refer(client, lawyer, case["id"], "MP", consent_override_justification=MARKER)
    read = await client.get(f"/v1/referrals/{referral['id']}", headers=lawyer.headers)
    stored = await query(
        db,
        "SELECT justification_ciphertext FROM consent_override WHERE case_id = :c",
        c=_db_uuid(db, case["id"]),
    )

    assert referral["consent_overridden"] is True
    assert MARKER not in str(referral)
    assert MARKER not in read.text
    assert len(stored) == 1
    assert stored[0][0] is not None
    assert await _rows_holding_marker(db, case["id"]) == []
