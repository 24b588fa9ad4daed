"""Referrals through HTTP: consent, answers, cancellation, revocation and expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from service.referrals import service as referral_service
from tests.support.factories import Factory, SignedInUser, create_case


async def _consent(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, share_with: list[str]
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/cases/{case_id}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": share_with, "language": "qu"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _refer(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, to: str, purpose: str = "shelter"
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": to, "purpose": purpose},
        headers=user.headers,
    )


async def test_referral_without_consent_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MINJUS"])

    refused = await _refer(client, police, case["id"], "MIMP")
    view = (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()

    assert refused.status_code == 409
    assert refused.json()["code"] == "consent_required"
    assert view["status"] == "identified"
    outbox = (
        await client.get(
            "/v1/referrals",
            params={"direction": "outgoing", "case_id": case["id"]},
            headers=police.headers,
        )
    ).json()["items"]
    assert outbox == []


async def test_revoking_consent_cancels_the_pending_referrals_it_covered(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    consent = await _consent(client, police, case["id"], ["MIMP", "MINJUS", "NGO-SAMPLE"])
    pending = (await _refer(client, police, case["id"], "MIMP")).json()
    accepted = (await _refer(client, police, case["id"], "MINJUS", "legal_aid")).json()
    minjus = await factory.user("MINJUS", Role.legal_aid)
    await client.post(f"/v1/referrals/{accepted['id']}/accept", headers=minjus.headers)
    # Another consent still covers NGO-SAMPLE: its referral stays.
    await _consent(client, police, case["id"], ["NGO-SAMPLE"])
    ngo_referral = (await _refer(client, police, case["id"], "NGO-SAMPLE")).json()

    revoked = await client.post(f"/v1/consents/{consent['id']}/revoke", headers=police.headers)
    again = await client.post(f"/v1/consents/{consent['id']}/revoke", headers=police.headers)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert again.status_code == 409
    assert again.json()["code"] == "consent_already_revoked"
    statuses = {
        r["id"]: (r["status"], r["reason"])
        for r in (
            await client.get(
                "/v1/referrals",
                params={"direction": "outgoing", "case_id": case["id"]},
                headers=police.headers,
            )
        ).json()["items"]
    }
    assert statuses[pending["id"]] == ("cancelled", "consent_revoked")
    assert statuses[accepted["id"]][0] == "accepted"
    assert statuses[ngo_referral["id"]][0] == "requested"
    # MIMP can no longer accept it.
    late = await client.post(f"/v1/referrals/{pending['id']}/accept", headers=mimp.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "illegal_referral_action"
    assert late.json()["allowed_actions"] == []


async def test_unanswered_referral_expires_and_alerts_the_sender(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = (await _refer(client, police, case["id"], "MIMP", "shelter")).json()
    due = referral["due_at"]

    async with db.session() as session:
        none_yet = await referral_service.expire_overdue_referrals(
            session, now=utcnow() + timedelta(hours=23)
        )
    async with db.session() as session:
        expired = await referral_service.expire_overdue_referrals(
            session, now=utcnow() + timedelta(hours=25)
        )

    outbox = (
        await client.get(
            "/v1/referrals",
            params={"direction": "outgoing", "case_id": case["id"]},
            headers=police.headers,
        )
    ).json()["items"]
    alerts = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]
    mimp_alerts = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=mimp.headers)
    ).json()["items"]
    late_accept = await client.post(f"/v1/referrals/{referral['id']}/accept", headers=mimp.headers)

    assert due  # shelter referrals are due within 24 hours
    assert none_yet == 0
    assert expired >= 1
    assert (outbox[0]["status"], outbox[0]["reason"]) == ("expired", "unanswered_past_deadline")
    assert [a["kind"] for a in alerts] == ["referral_overdue"]
    assert mimp_alerts == []
    assert late_accept.status_code == 409
    assert late_accept.json()["code"] == "illegal_referral_action"

    acknowledged = await client.post(
        f"/v1/alerts/{alerts[0]['id']}/acknowledge", headers=police.headers
    )
    resolved = await client.post(f"/v1/alerts/{alerts[0]['id']}/resolve", headers=police.headers)
    twice = await client.post(f"/v1/alerts/{alerts[0]['id']}/resolve", headers=police.headers)
    kept = (
        await client.get(
            "/v1/alerts",
            params={"case_id": case["id"], "status": "resolved"},
            headers=police.headers,
        )
    ).json()["items"]
    assert acknowledged.json()["status"] == "acknowledged"
    assert resolved.json()["status"] == "resolved"
    assert twice.status_code == 409
    assert twice.json()["code"] == "illegal_alert_change"
    assert [a["id"] for a in kept] == [alerts[0]["id"]]


async def test_only_the_receiver_answers_and_only_the_sender_cancels(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = (await _refer(client, police, case["id"], "MIMP")).json()
    url = f"/v1/referrals/{referral['id']}"

    self_accept = await client.post(f"{url}/accept", headers=police.headers)
    receiver_cancel = await client.post(f"{url}/cancel", headers=mimp.headers)
    no_reason = await client.post(f"{url}/reject", json={}, headers=mimp.headers)
    rejected = await client.post(f"{url}/reject", json={"reason": "no beds"}, headers=mimp.headers)

    assert self_accept.status_code == receiver_cancel.status_code == 409
    assert self_accept.json()["code"] == receiver_cancel.json()["code"] == "illegal_referral_action"
    assert self_accept.json()["allowed_actions"] == ["cancel"]
    assert no_reason.status_code == 422
    assert no_reason.json()["code"] == "validation_error"
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "no beds"
    # A rejected referral gives MIMP no access to the case.
    hidden = await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "case_not_found"


async def test_sender_cancels_an_accepted_referral_and_the_receiver_loses_access(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["NGO-SAMPLE"])
    referral = (await _refer(client, police, case["id"], "NGO-SAMPLE", "reintegration")).json()
    url = f"/v1/referrals/{referral['id']}"
    await client.post(f"{url}/accept", headers=ngo.headers)
    started = await client.post(f"{url}/start", headers=ngo.headers)
    assert (await client.get(f"/v1/cases/{case['id']}", headers=ngo.headers)).status_code == 200

    cancelled = await client.post(f"{url}/cancel", json={"reason": "moved"}, headers=police.headers)

    assert started.json()["status"] == "in_progress"
    assert cancelled.json()["status"] == "cancelled"
    hidden = await client.get(f"/v1/cases/{case['id']}", headers=ngo.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "case_not_found"


async def test_other_organizations_cannot_touch_records_of_cases_they_are_not_in(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    outsider = await factory.user("MINEDU", Role.caseworker)
    case = await create_case(client, police)
    consent = await _consent(client, police, case["id"], ["MIMP"])
    referral = (await _refer(client, police, case["id"], "MIMP")).json()
    custody = (
        await client.post(
            f"/v1/cases/{case['id']}/custody-periods",
            json={"place_kind": "police_station", "start": utcnow().isoformat()},
            headers=police.headers,
        )
    ).json()
    [alert] = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]

    attempts = {
        "consent_not_found": await client.post(
            f"/v1/consents/{consent['id']}/revoke", headers=outsider.headers
        ),
        "referral_not_found": await client.post(
            f"/v1/referrals/{referral['id']}/cancel", headers=outsider.headers
        ),
        "custody_period_not_found": await client.post(
            f"/v1/custody-periods/{custody['id']}/end",
            json={"end": utcnow().isoformat()},
            headers=outsider.headers,
        ),
        "alert_not_found": await client.post(
            f"/v1/alerts/{alert['id']}/resolve", headers=outsider.headers
        ),
    }
    for code, response in attempts.items():
        assert response.status_code == 404, (code, response.text)
        assert response.json()["code"] == code
    listed = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=outsider.headers)
    ).json()["items"]
    assert listed == []


async def _status(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> str:
    response = await client.get(f"/v1/cases/{case_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


@pytest.mark.parametrize(
    ("org", "role", "purpose"),
    [
        ("MINJUS", Role.legal_aid, "legal_aid"),
        ("UNHCR", Role.caseworker, "refugee_procedure"),
    ],
)
async def test_accepting_a_referral_that_is_not_care_leaves_the_case_referred(
    client: httpx.AsyncClient, factory: Factory, org: str, role: Role, purpose: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    receiver = await factory.user(org, role)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], [org])
    referral = (await _refer(client, police, case["id"], org, purpose)).json()

    accepted = await client.post(f"/v1/referrals/{referral['id']}/accept", headers=receiver.headers)

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    # The receiver is involved (it sees the case), but the person is not "in care".
    assert await _status(client, receiver, case["id"]) == "referred"
    history = (
        await client.get(f"/v1/cases/{case['id']}/transitions", headers=police.headers)
    ).json()
    assert [t["to_status"] for t in history] == ["referred"]


@pytest.mark.parametrize(
    ("org", "purpose"),
    [("MIMP", "shelter"), ("MIMP", "protection_services"), ("NGO-SAMPLE", "reintegration")],
)
async def test_accepting_a_referral_that_starts_care_puts_the_case_in_care(
    client: httpx.AsyncClient, factory: Factory, org: str, purpose: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    receiver = await factory.user(org, Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], [org])
    referral = (await _refer(client, police, case["id"], org, purpose)).json()

    accepted = await client.post(f"/v1/referrals/{referral['id']}/accept", headers=receiver.headers)

    assert accepted.status_code == 200, accepted.text
    assert await _status(client, police, case["id"]) == "in_care"


async def test_care_begins_with_the_first_care_referral_after_legal_aid(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MINJUS", "MIMP"])
    legal = (await _refer(client, police, case["id"], "MINJUS", "legal_aid")).json()
    shelter = (await _refer(client, police, case["id"], "MIMP", "shelter")).json()

    await client.post(f"/v1/referrals/{legal['id']}/accept", headers=defender.headers)
    after_legal = await _status(client, police, case["id"])
    await client.post(f"/v1/referrals/{shelter['id']}/accept", headers=mimp.headers)

    assert after_legal == "referred"
    assert await _status(client, police, case["id"]) == "in_care"
