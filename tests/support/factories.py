"""Factories: users with tokens, and valid request bodies a test can override."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from service.core.db import Database
from service.core.security import Actor, Security
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.rules import Role
from service.main import open_database

_counter = itertools.count(1)


@dataclass(frozen=True)
class SignedInUser:
    actor: Actor
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    """Creates data through the real services, as the application would."""

    def __init__(self, db: Database, security: Security) -> None:
        self.db = db
        self.security = security

    async def user(self, org: str = "PNP", role: Role = Role.identifier) -> SignedInUser:
        username = f"u{next(_counter)}-{uuid.uuid4().hex[:8]}"
        password = f"pw-{uuid.uuid4().hex}"
        async with self.db.session() as session:
            user = await identity_service.create_user(
                session,
                security=self.security,
                actor=None,
                username=username,
                organization_code=org,
                role=role,
                password=password,
            )
            organization = await identity_service.get_organization_by_code(session, org)
        actor = Actor(
            user_id=user.id,
            username=username,
            organization_id=organization.id,
            organization_code=org,
            role=role.value,
        )
        token = self.security.tokens.issue(user_id=user.id, organization_code=org, role=role.value)
        return SignedInUser(actor=actor, password=password, token=token)


def case_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/cases body: a raid in Madre de Dios."""
    body: dict[str, Any] = {
        "identified_on": date(2026, 3, 14).isoformat(),
        "region": "17",
        "place": "Mazuko, bar on the Interoceánica",
        "context": "police_operation",
        "operation_ref": f"OP-{uuid.uuid4().hex[:6]}",
        "exploitation": [{"form": "sexual_exploitation"}],
        "indicators": ["no identity documents", "debt to employer"],
        "current_location": "Comisaría de Mazuko",
        "person": person_body(),
    }
    body.update(overrides)
    return body


def person_body(**overrides: Any) -> dict[str, Any]:
    """A valid person: a 15-year-old Peruvian girl with her DNI (unique per call)."""
    person: dict[str, Any] = {
        "given_name": "Rosa",
        "family_name": f"Quispe {uuid.uuid4().hex[:6]}",
        "document": {"type": "dni", "number": f"{uuid.uuid4().int % 10**8:08d}"},
        "age_estimate": 15,
        "gender": "female",
        "nationality": "PER",
        "languages": ["es", "qu"],
    }
    person.update(overrides)
    return person


async def create_case(
    client: httpx.AsyncClient, user: SignedInUser, **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/v1/cases", json=case_body(**overrides), headers=user.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def patch_case(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, body: dict[str, Any]
) -> httpx.Response:
    """PATCH a case the way a front-end must: read it for its ETag, then send If-Match."""
    read = await client.get(f"/v1/cases/{case_id}", headers=user.headers)
    assert read.status_code == 200, read.text
    return await client.patch(
        f"/v1/cases/{case_id}",
        json=body,
        headers={**user.headers, "If-Match": read.headers["ETag"]},
    )


async def create_facility(
    client: httpx.AsyncClient, admin: SignedInUser, **overrides: Any
) -> dict[str, Any]:
    """A facility of its own, so tests do not compete for the seeded beds."""
    body: dict[str, Any] = {
        "code": f"T-{uuid.uuid4().hex[:10].upper()}",
        "name": "Casa de prueba",
        "operator": "MIMP",
        "region": "24",
        "kind": "ngo_shelter",
        "capacity": 1,
        "min_age": 0,
        "max_age": 120,
        "genders": [],
        "exploitation_forms": ["forced_marriage"],
        "address": "Av. Secreta 123",
    }
    body.update(overrides)
    response = await client.post("/v1/facilities", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def request_placement(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, **body: Any
) -> httpx.Response:
    """POST /v1/cases/{id}/placements with the given body."""
    return await client.post(f"/v1/cases/{case_id}/placements", json=body, headers=user.headers)


def marriage_case(**person: Any) -> dict[str, Any]:
    """Case fields of a forced marriage in Tumbes: only the tests' own facilities take it."""
    return {
        "exploitation": [{"form": "forced_marriage"}],
        "region": "24",
        "person": person_body(**person),
    }


async def refer_for_shelter(
    client: httpx.AsyncClient, sender: SignedInUser, receiver: SignedInUser, case_id: str
) -> dict[str, Any]:
    """The person consents to services and to her data going to the receiver; the sender
    refers her for shelter and the receiver accepts: the receiver may now place her."""
    consent = {
        "purposes": ["services", "data_sharing"],
        "share_with": [receiver.actor.organization_code],
        "language": "es",
    }
    response = await client.post(
        f"/v1/cases/{case_id}/consents", json=consent, headers=sender.headers
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": receiver.actor.organization_code, "purpose": "shelter"},
        headers=sender.headers,
    )
    assert response.status_code == 201, response.text
    referral_id = response.json()["id"]
    response = await client.post(f"/v1/referrals/{referral_id}/accept", headers=receiver.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def create_shelter_case(
    client: httpx.AsyncClient, police: SignedInUser, shelter: SignedInUser, **overrides: Any
) -> dict[str, Any]:
    """A case the police identified and referred for shelter to `shelter`'s organization,
    which accepted: the usual way to a bed."""
    case = await create_case(client, police, **overrides)
    await refer_for_shelter(client, police, shelter, case["id"])
    return case


async def user_in(
    settings: Settings, org: str = "PNP", role: Role = Role.identifier
) -> SignedInUser:
    """A signed-in user created in the settings' database from outside any app (for a
    server the test starts itself)."""
    db = open_database(settings)
    try:
        return await Factory(db, Security.from_settings(settings)).user(org, role)
    finally:
        await db.dispose()
