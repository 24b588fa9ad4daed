"""Consent through HTTP: versions, refusals, and what they let the person's data reach."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, create_case


async def _record(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"/v1/cases/{case_id}/consents", json=body, headers=user.headers)


async def _consent(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, share_with: list[str]
) -> dict[str, Any]:
    response = await _record(
        client,
        user,
        case_id,
        {"purposes": ["services", "data_sharing"], "share_with": share_with, "language": "es"},
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _refuse(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> dict[str, Any]:
    response = await _record(client, user, case_id, {"refused": True, "language": "qu"})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _refer(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, to: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": to, "purpose": "shelter", **extra},
        headers=user.headers,
    )


def _db_uuid(db: Database, value: str) -> str:
    return value if db.dialect == "postgresql" else value.replace("-", "")


async def test_a_refusal_is_recorded_listed_and_counted_in_sql(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    given = await _consent(client, police, case["id"], ["MIMP"])

    refusal = await _refuse(client, police, case["id"])
    listed = (await client.get(f"/v1/cases/{case['id']}/consents", headers=police.headers)).json()

    assert refusal["refused"] is True
    assert refusal["purposes"] == []
    assert refusal["share_with"] == []
    assert refusal["version"] == given["version"] + 1
    assert [(c["version"], c["refused"]) for c in listed] == [(1, False), (2, True)]
    [(refusals, consents)] = await query(
        db,
        "SELECT sum(CASE WHEN refused THEN 1 ELSE 0 END), count(*) FROM consent"
        " WHERE case_id = :case_id",
        case_id=_db_uuid(db, case["id"]),
    )
    assert (refusals, consents) == (1, 2)


async def test_a_refusal_blocks_referrals_exactly_as_no_consent_does(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    caseworker = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)
    await _refuse(client, police, case["id"])

    refused = await _refer(client, police, case["id"], "MIMP")
    overridden = await _refer(
        client,
        caseworker,
        case["id"],
        "MIMP",
        consent_override_justification="She is a child in immediate danger tonight.",
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "consent_required"
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["consent_overridden"] is True


async def test_a_refusal_supersedes_consent_given_earlier(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP", "MINJUS"])
    referral = (await _refer(client, police, case["id"], "MIMP")).json()
    await client.post(f"/v1/referrals/{referral['id']}/accept", headers=mimp.headers)
    before = await client.get(f"/v1/cases/{case['id']}/person", headers=mimp.headers)

    await _refuse(client, police, case["id"])
    after = await client.get(f"/v1/cases/{case['id']}/person", headers=mimp.headers)
    to_minjus = await _refer(client, police, case["id"], "MINJUS")

    assert before.status_code == 200, before.text
    assert after.status_code == 409
    assert after.json()["code"] == "identifying_data_not_shared"
    assert to_minjus.status_code == 409
    assert to_minjus.json()["code"] == "consent_required"


async def test_consent_recorded_after_a_refusal_covers_again(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _refuse(client, police, case["id"])
    await _consent(client, police, case["id"], ["MIMP"])

    referral = await _refer(client, police, case["id"], "MIMP")

    assert referral.status_code == 201, referral.text
    assert referral.json()["consent_overridden"] is False


async def test_a_refusal_cannot_be_revoked(client: httpx.AsyncClient, factory: Factory) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    refusal = await _refuse(client, police, case["id"])

    revoked = await client.post(f"/v1/consents/{refusal['id']}/revoke", headers=police.headers)
    listed = (await client.get(f"/v1/cases/{case['id']}/consents", headers=police.headers)).json()
    referral = await _refer(client, police, case["id"], "MIMP")

    assert revoked.status_code == 409
    assert revoked.json()["code"] == "consent_refusal_not_revocable"
    assert [c["revoked_at"] for c in listed] == [None, None]
    assert referral.status_code == 409
    assert referral.json()["code"] == "consent_required"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"refused": True, "purposes": ["services"], "language": "es"}, "purposes"),
        ({"refused": True, "share_with": ["MIMP"], "language": "es"}, "share_with"),
        ({"refused": False, "purposes": [], "language": "es"}, "purposes"),
        ({"refused": False, "language": "es"}, "purposes"),
        ({"purposes": [], "language": "es"}, "purposes"),
    ],
)
async def test_a_refusal_with_terms_or_a_consent_without_purposes_is_422_naming_the_field(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, Any], field: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    response = await _record(client, police, case["id"], body)
    listed = (await client.get(f"/v1/cases/{case['id']}/consents", headers=police.headers)).json()

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert listed == []


async def test_a_refusal_cancels_the_pending_referrals_nothing_covers_any_more(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    await _consent(client, police, case["id"], ["MIMP"])
    referral = (await _refer(client, police, case["id"], "MIMP")).json()
    overridden = await _refer(
        client,
        police,
        case["id"],
        "MP",
        consent_override_justification="a prosecutor must act on the raid today",
    )
    assert overridden.status_code == 201, overridden.text
    await _refuse(client, police, case["id"])

    accepted = await client.post(f"/v1/referrals/{referral['id']}/accept", headers=mimp.headers)

    assert accepted.status_code == 409
    assert accepted.json()["code"] == "illegal_referral_action"
    outbox = (
        await client.get(
            "/v1/referrals",
            params={"direction": "outgoing", "case_id": case["id"]},
            headers=police.headers,
        )
    ).json()["items"]
    assert {r["to_org"]: (r["status"], r["reason"]) for r in outbox} == {
        "MIMP": ("cancelled", "consent_refused"),
        "MP": ("requested", None),
    }
    hidden = await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "case_not_found"
