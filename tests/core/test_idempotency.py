"""Idempotency-Key on every POST: a retry replays the first answer and never does the work
twice; the key is claimed in the transaction of the work, per user, for a limited time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from service.cases import service as case_service
from service.cases.dependencies import CaseWriterDep
from service.cases.schemas import CaseCreate
from service.core import idempotency
from service.core.db import Database, SessionDep
from service.core.settings import Settings
from service.identity.dependencies import AuthenticatedRoute, SecurityDep
from service.identity.rules import Role
from service.main import create_app
from service.pathway import sweep
from tests.support.databases import execute, query
from tests.support.factories import (
    Factory,
    SignedInUser,
    case_body,
    create_case,
    create_facility,
    create_shelter_case,
    marriage_case,
)


def _key() -> str:
    return f"retry-{uuid.uuid4()}"


def _with_key(user: SignedInUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def _cases_with_operation(db: Database, operation_ref: str) -> int:
    [(count,)] = await query(
        db, "SELECT count(*) FROM identification WHERE operation_ref = :r", r=operation_ref
    )
    return int(count)


async def _keys_of(db: Database, user: SignedInUser) -> list[tuple[Any, ...]]:
    return await query(
        db,
        "SELECT status_code, response FROM idempotency_key WHERE user_id = :u",
        u=user.actor.user_id.hex if db.dialect == "sqlite" else user.actor.user_id,
    )


async def test_retried_case_creation_replays_the_first_answer_and_opens_one_case(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body()
    key = _key()

    first = await client.post("/v1/cases", json=body, headers=_with_key(police, key))
    retry = await client.post("/v1/cases", json=body, headers=_with_key(police, key))

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.content == first.content
    assert await _cases_with_operation(db, body["operation_ref"]) == 1


async def test_stored_answer_is_sealed_not_kept_in_clear(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body()

    response = await client.post("/v1/cases", json=body, headers=_with_key(police, _key()))
    [(status_code, sealed)] = await _keys_of(db, police)

    assert response.status_code == 201
    assert status_code == 201
    for clear in (response.json()["id"], body["operation_ref"], body["place"]):
        assert clear.encode() not in bytes(sealed)


async def test_retried_placement_places_once_and_replays_the_same_answer(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    admin = await factory.user("MIMP", Role.admin)
    shelter = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(client, admin, capacity=2)
    case = await create_shelter_case(client, police, shelter, **marriage_case())
    key = _key()
    path = f"/v1/cases/{case['id']}/placements"

    answers = [
        await client.post(
            path, json={"facility_id": facility["id"]}, headers=_with_key(shelter, key)
        )
        for _ in range(3)
    ]
    [(placements,)] = await query(
        db, "SELECT count(*) FROM placement WHERE facility_id = :f", f=_uuid_param(db, facility)
    )

    assert [a.status_code for a in answers] == [201, 201, 201], answers[0].text
    assert answers[0].json()["outcome"] == "placed"
    assert {a.content for a in answers} == {answers[0].content}
    assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None, "true", "true"]
    assert placements == 1


def _uuid_param(db: Database, row: dict[str, Any]) -> Any:
    value = uuid.UUID(row["id"])
    return value.hex if db.dialect == "sqlite" else value


async def test_same_key_with_another_body_is_refused_and_does_nothing(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    other = case_body()

    first = await client.post("/v1/cases", json=case_body(), headers=_with_key(police, key))
    reused = await client.post("/v1/cases", json=other, headers=_with_key(police, key))

    assert first.status_code == 201
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert key not in reused.text
    assert await _cases_with_operation(db, other["operation_ref"]) == 0


async def test_same_key_on_another_route_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    case = await create_case(client, police)

    first = await client.post("/v1/cases", json=case_body(), headers=_with_key(police, key))
    elsewhere = await client.post(
        f"/v1/cases/{case['id']}/identifications",
        json={k: v for k, v in case_body().items() if k not in {"person", "current_location"}},
        headers=_with_key(police, key),
    )

    assert first.status_code == 201
    assert elsewhere.status_code == 422
    assert elsewhere.json()["code"] == "idempotency_key_reused"


async def test_same_key_and_body_for_another_case_is_refused(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    one, other = await create_case(client, police), await create_case(client, police)
    body = {k: v for k, v in case_body().items() if k not in {"person", "current_location"}}

    first = await client.post(
        f"/v1/cases/{one['id']}/identifications", json=body, headers=_with_key(police, key)
    )
    elsewhere = await client.post(
        f"/v1/cases/{other['id']}/identifications", json=body, headers=_with_key(police, key)
    )

    assert first.status_code == 201, first.text
    assert elsewhere.status_code == 422
    assert elsewhere.json()["code"] == "idempotency_key_reused"
    assert await _cases_with_operation(db, body["operation_ref"]) == 1


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    one = await factory.user("PNP", Role.identifier)
    another = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()

    mine = await client.post("/v1/cases", json=body, headers=_with_key(one, key))
    theirs = await client.post("/v1/cases", json=body, headers=_with_key(another, key))

    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert await _cases_with_operation(db, body["operation_ref"]) == 2


async def test_an_error_binds_no_key_so_the_corrected_request_runs(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()

    refused = await client.post(
        "/v1/cases", json={**body, "region": "99"}, headers=_with_key(police, key)
    )
    corrected = await client.post("/v1/cases", json=body, headers=_with_key(police, key))

    assert refused.status_code == 422
    assert corrected.status_code == 201
    assert "idempotent-replayed" not in corrected.headers
    assert await _cases_with_operation(db, body["operation_ref"]) == 1


@pytest.mark.parametrize("key", ["two words", "x" * 256, "clé", ""])
async def test_malformed_key_is_refused_naming_the_header(
    client: httpx.AsyncClient, factory: Factory, db: Database, key: str
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body()
    headers = [(k.encode(), v.encode()) for k, v in police.headers.items()]
    headers.append((b"Idempotency-Key", key.encode()))

    response = await client.post("/v1/cases", json=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert await _cases_with_operation(db, body["operation_ref"]) == 0


async def test_expired_key_is_purged_by_the_sweep_and_can_be_used_again(
    client: httpx.AsyncClient, factory: Factory, db: Database, settings: Settings
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()
    user = police.actor.user_id.hex if db.dialect == "sqlite" else police.actor.user_id
    first = await client.post("/v1/cases", json=body, headers=_with_key(police, key))
    await execute(
        db,
        "UPDATE idempotency_key SET expires_at = created_at WHERE user_id = :u",
        u=user,
    )

    report = await sweep.sweep(db, settings=settings)
    remaining = await _keys_of(db, police)
    again = await client.post("/v1/cases", json=body, headers=_with_key(police, key))

    assert first.status_code == 201
    assert report.idempotency_keys_purged >= 1
    assert remaining == []
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await _cases_with_operation(db, body["operation_ref"]) == 2


async def test_expired_key_not_yet_purged_is_free_again(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()
    user = police.actor.user_id.hex if db.dialect == "sqlite" else police.actor.user_id
    first = await client.post("/v1/cases", json=body, headers=_with_key(police, key))
    await execute(
        db, "UPDATE idempotency_key SET expires_at = created_at WHERE user_id = :u", u=user
    )

    again = await client.post("/v1/cases", json=body, headers=_with_key(police, key))

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert len(await _keys_of(db, police)) == 1


async def test_concurrent_retries_in_one_process_do_the_work_once(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()

    answers = await asyncio.gather(
        *(client.post("/v1/cases", json=body, headers=_with_key(police, key)) for _ in range(5))
    )

    assert [a.status_code for a in answers] == [201] * 5
    assert {a.content for a in answers} == {answers[0].content}
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 4
    assert await _cases_with_operation(db, body["operation_ref"]) == 1


@pytest.fixture
async def crashing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus one route that opens a case and then fails, as a crash would."""
    router = APIRouter(route_class=AuthenticatedRoute)

    @router.post("/v1/test-crash", status_code=201)
    async def open_case_then_crash(
        body: CaseCreate, actor: CaseWriterDep, session: SessionDep, security: SecurityDep
    ) -> None:
        await case_service.create_case(session, actor=actor, keyring=security.keyring, data=body)
        await session.flush()
        raise RuntimeError("the process fails after the work")

    app: FastAPI = create_app(settings)
    app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as c:
            yield c


async def test_a_crash_after_the_work_leaves_neither_key_nor_work(
    crashing_client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()

    crashed = await crashing_client.post(
        "/v1/test-crash", json=body, headers=_with_key(police, key)
    )
    retried = await crashing_client.post(
        "/v1/test-crash", json=body, headers=_with_key(police, key)
    )

    assert crashed.status_code == retried.status_code == 500
    assert "idempotent-replayed" not in retried.headers
    assert await _keys_of(db, police) == []
    assert await _cases_with_operation(db, body["operation_ref"]) == 0


def test_every_post_but_the_token_declares_the_key(app: FastAPI) -> None:
    spec = app.openapi()
    without = [
        path
        for path, operations in spec["paths"].items()
        if "post" in operations
        and "Idempotency-Key"
        not in {p["name"] for p in operations["post"].get("parameters", []) if p["in"] == "header"}
    ]

    assert without == ["/v1/auth/token"]


@pytest.mark.postgres
async def test_a_retry_behind_a_key_held_too_long_gets_409_then_claims_it_once_released(
    settings: Settings, factory: Factory, db: Database
) -> None:
    impatient = settings.model_copy(update={"idempotency_wait_seconds": 0.2})
    app = create_app(impatient)
    police = await factory.user("PNP", Role.identifier)
    key = _key()
    body = case_body()
    keyring = factory.security.keyring
    headers = _with_key(police, key)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            async with db.session() as holder:  # another request holding the key, in flight
                held = await idempotency.claim_key(
                    holder,
                    keyring=keyring,
                    user_id=police.actor.user_id,
                    key=key,
                    fingerprint="held-by-another-request",
                    ttl=timedelta(minutes=5),
                    wait=1,
                )
                assert isinstance(held, idempotency.IdempotencyKey)
                in_flight = await client.post("/v1/cases", json=body, headers=headers)
                await holder.rollback()  # the holder fails: the key is free again
            claimed = await client.post("/v1/cases", json=body, headers=headers)

    assert in_flight.status_code == 409
    assert in_flight.json()["code"] == "idempotency_key_in_flight"
    assert claimed.status_code == 201
    assert "idempotent-replayed" not in claimed.headers
    assert await _cases_with_operation(db, body["operation_ref"]) == 1
