"""Shared steps of the repatriation tests: a Venezuelan woman found in Lima, a Peruvian
woman found by the consulate in Buenos Aires, and the calls they go through."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import sqlalchemy as sa

from service.core.db import Database
from tests.support.factories import SignedInUser, case_body, create_case, person_body

TRAVEL_ON = date(2026, 4, 2).isoformat()


def foreign_body(**overrides: Any) -> dict[str, Any]:
    """A Venezuelan woman identified in a police operation in Lima."""
    return case_body(
        region="15",
        place="Lima, night club in La Victoria",
        person=person_body(
            given_name="Yusmary",
            nationality="VEN",
            age_estimate=22,
            document={"type": "passport", "number": f"V{uuid.uuid4().int % 10**9:09d}"},
            languages=["es"],
        ),
        **overrides,
    )


def abroad_body(**overrides: Any) -> dict[str, Any]:
    """A Peruvian woman identified by the consulate in Buenos Aires."""
    body = case_body(
        exploitation_country="ARG",
        context="consulate_abroad",
        place="Buenos Aires, taller textil de Flores",
        current_location="Consulado General del Perú en Buenos Aires",
        person=person_body(given_name="Maribel", age_estimate=24),
    )
    del body["region"]
    body.update(overrides)
    return body


async def foreign_case(client: httpx.AsyncClient, police: SignedInUser) -> dict[str, Any]:
    return await create_case(client, police, **foreign_body())


async def abroad_case(client: httpx.AsyncClient, consulate: SignedInUser) -> dict[str, Any]:
    return await create_case(client, consulate, **abroad_body(region=None))


async def consent(
    client: httpx.AsyncClient,
    user: SignedInUser,
    case_id: str,
    purposes: list[str],
    share_with: list[str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/cases/{case_id}/consents",
        json={"purposes": purposes, "share_with": share_with or [], "language": "es"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def refer_to_unhcr(
    client: httpx.AsyncClient, police: SignedInUser, unhcr: SignedInUser, case_id: str
) -> None:
    """The pathway for a foreign victim: referred to UNHCR, which accepts (and is involved)."""
    await consent(client, police, case_id, ["services", "data_sharing"], ["UNHCR"])
    sent = await client.post(
        f"/v1/cases/{case_id}/referrals",
        json={"to_org": "UNHCR", "purpose": "refugee_procedure"},
        headers=police.headers,
    )
    assert sent.status_code == 201, sent.text
    accepted = await client.post(f"/v1/referrals/{sent.json()['id']}/accept", headers=unhcr.headers)
    assert accepted.status_code == 200, accepted.text


async def claim(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, status: str, on: str
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/asylum-claim",
        json={"status": status, "effective_on": on},
        headers=user.headers,
    )


async def plan(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{case_id}/repatriations",
        json={"travel_on": TRAVEL_ON, **body},
        headers=user.headers,
    )


def home_body(**overrides: Any) -> dict[str, Any]:
    """From Argentina to Piura (20), through the consulate, received by MIMP."""
    body: dict[str, Any] = {
        "direction": "to_peru",
        "consulate": "RREE",
        "receiving_organization": "MIMP",
        "arrival_region": "20",
    }
    body.update(overrides)
    return body


async def arrive(
    client: httpx.AsyncClient,
    user: SignedInUser,
    repatriation_id: str,
    arrived_on: str = "2026-04-03",
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/repatriations/{repatriation_id}/arrival",
        json={"arrived_on": arrived_on, **body},
        headers=user.headers,
    )


async def rows_of_case(db: Database, table: str, case_id: str) -> int:
    """How many rows of a table hang off the case, read with raw SQL."""
    stmt = sa.text(f"SELECT count(*) FROM {table} WHERE case_id = :id").bindparams(  # noqa: S608
        sa.bindparam("id", type_=sa.Uuid())
    )
    async with db.engine.connect() as conn:
        return int((await conn.execute(stmt, {"id": uuid.UUID(case_id)})).scalar_one())
