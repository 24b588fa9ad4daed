"""Concurrent answers to a referral and to a consent: ETags on reads and answers, If-Match."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, create_case


async def _consented_referral(
    client: httpx.AsyncClient, police: SignedInUser, to: str = "MIMP"
) -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
    """A case, the consent that covers it, and a shelter referral to `to`."""
    case = await create_case(client, police)
    consent = await client.post(
        f"/v1/cases/{case['id']}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": [to], "language": "es"},
        headers=police.headers,
    )
    assert consent.status_code == 201, consent.text
    referral = await client.post(
        f"/v1/cases/{case['id']}/referrals",
        json={"to_org": to, "purpose": "shelter"},
        headers=police.headers,
    )
    assert referral.status_code == 201, referral.text
    return case, consent.json(), referral


async def test_referral_etag_is_read_and_changes_with_each_answer(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    _, _, sent = await _consented_referral(client, police)
    referral_id = sent.json()["id"]

    read = await client.get(f"/v1/referrals/{referral_id}", headers=mimp.headers)
    accepted = await client.post(
        f"/v1/referrals/{referral_id}/accept",
        headers={**mimp.headers, "If-Match": read.headers["ETag"]},
    )
    started = await client.post(f"/v1/referrals/{referral_id}/start", headers=mimp.headers)
    again = await client.get(f"/v1/referrals/{referral_id}", headers=police.headers)

    assert read.status_code == 200, read.text
    assert read.headers["ETag"] == sent.headers["ETag"]
    assert read.json()["status"] == "requested"
    assert accepted.status_code == 200, accepted.text
    tags = [read.headers["ETag"], accepted.headers["ETag"], started.headers["ETag"]]
    assert len(set(tags)) == 3
    assert again.headers["ETag"] == started.headers["ETag"]
    assert again.json()["status"] == "in_progress"


async def test_referral_is_hidden_from_an_uninvolved_organization(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    outsider = await factory.user("MINJUS", Role.legal_aid)
    _, _, sent = await _consented_referral(client, police)

    response = await client.get(f"/v1/referrals/{sent.json()['id']}", headers=outsider.headers)

    assert response.status_code == 404
    assert "ETag" not in response.headers


async def test_two_caseworkers_answering_the_same_referral_one_wins(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    first = await factory.user("MIMP", Role.caseworker)
    second = await factory.user("MIMP", Role.caseworker)
    _, _, sent = await _consented_referral(client, police)
    referral_id = sent.json()["id"]
    etag = (await client.get(f"/v1/referrals/{referral_id}", headers=first.headers)).headers["ETag"]

    accept, reject = await asyncio.gather(
        client.post(
            f"/v1/referrals/{referral_id}/accept", headers={**first.headers, "If-Match": etag}
        ),
        client.post(
            f"/v1/referrals/{referral_id}/reject",
            json={"reason": "no_capacity"},
            headers={**second.headers, "If-Match": etag},
        ),
    )

    assert sorted([accept.status_code, reject.status_code]) == [200, 412], (
        accept.text,
        reject.text,
    )
    winner = accept if accept.status_code == 200 else reject
    stored = await client.get(f"/v1/referrals/{referral_id}", headers=police.headers)
    assert stored.json()["status"] == winner.json()["status"]
    rows = await query(db, "SELECT referral_id, to_status FROM referral_status_change")
    changes = [status for ref, status in rows if uuid.UUID(str(ref)) == uuid.UUID(referral_id)]
    assert sorted(changes) == sorted(["requested", winner.json()["status"]])


async def test_consent_etag_changes_when_revoked_and_a_stale_revocation_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    outsider = await factory.user("MINJUS", Role.legal_aid)
    _, consent, _ = await _consented_referral(client, police)

    read = await client.get(f"/v1/consents/{consent['id']}", headers=police.headers)
    hidden = await client.get(f"/v1/consents/{consent['id']}", headers=outsider.headers)
    revoked = await client.post(
        f"/v1/consents/{consent['id']}/revoke",
        headers={**police.headers, "If-Match": read.headers["ETag"]},
    )
    stale = await client.post(
        f"/v1/consents/{consent['id']}/revoke",
        headers={**police.headers, "If-Match": read.headers["ETag"]},
    )
    after = await client.get(f"/v1/consents/{consent['id']}", headers=police.headers)

    assert read.status_code == 200, read.text
    assert read.json()["revoked_at"] is None
    assert hidden.status_code == 404
    assert revoked.status_code == 200, revoked.text
    assert revoked.headers["ETag"] != read.headers["ETag"]
    assert stale.status_code == 412, stale.text
    assert after.headers["ETag"] == revoked.headers["ETag"]
    assert after.json()["revoked_at"] is not None
