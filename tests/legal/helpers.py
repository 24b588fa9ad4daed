"""Shared steps of the legal tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from service.core.db import Database
from service.core.types import UTCDateTime
from tests.support.factories import SignedInUser


async def put_in_care(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> None:
    """Care begins: a service given to the person puts the case in care."""
    response = await client.post(
        f"/v1/cases/{case_id}/assistance",
        json={"kind": "psychological", "provided_on": "2026-03-15"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text


async def backdate_care(db: Database, case_id: str, at: datetime) -> None:
    """Pretend the case went into care at `at` (its in_care transition, by direct SQL)."""
    stmt = sa.text(
        "UPDATE case_transition SET at = :at WHERE case_id = :id AND to_status = 'in_care'"
    ).bindparams(sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("at", type_=UTCDateTime()))
    async with db.engine.begin() as conn:
        await conn.execute(stmt, {"id": uuid.UUID(case_id), "at": at})


async def audit_actions(db: Database, case_id: str) -> list[str]:
    """The actions of the case's audit events, oldest first."""
    stmt = sa.text("SELECT action FROM audit_event WHERE entity_id = :id ORDER BY occurred_at, id")
    async with db.engine.connect() as conn:
        rows = (await conn.execute(stmt, {"id": case_id})).all()
    return [row[0] for row in rows]


async def alerts(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, *statuses: str
) -> list[dict[str, Any]]:
    params: list[tuple[str, str | int | float | bool | None]] = [("case_id", case_id)]
    params += [("status", s) for s in statuses or ("open", "acknowledged", "resolved")]
    response = await client.get("/v1/alerts", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


COMPLAINT_FILED_ON = "2026-04-01"


async def open_proceeding(
    client: httpx.AsyncClient,
    prosecutor: SignedInUser,
    cases: list[tuple[str, str]],
    *,
    office: str = "FISTRAP-LIMA",
) -> dict[str, Any]:
    """A proceeding about these (case id, offence day) pairs, with a unique complaint number."""
    response = await client.post(
        "/v1/proceedings",
        json={
            "complaint_number": f"CF-{uuid.uuid4().hex[:10]}",
            "prosecutor_office": office,
            "complaint_filed_on": COMPLAINT_FILED_ON,
            "cases": [{"case_id": c, "offence_on": on} for c, on in cases],
        },
        headers=prosecutor.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def add_defendant(
    client: httpx.AsyncClient,
    prosecutor: SignedInUser,
    proceeding_id: str,
    charge_filed: str = "trafficking",
    *,
    public_official: bool = False,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/proceedings/{proceeding_id}/defendants",
        json={"charge_filed": charge_filed, "public_official": public_official},
        headers=prosecutor.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def move(
    client: httpx.AsyncClient,
    user: SignedInUser,
    proceeding_id: str,
    status: str,
    effective_on: str,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/proceedings/{proceeding_id}/status",
        json={"status": status, "effective_on": effective_on, **extra},
        headers=user.headers,
    )


async def bring_to_trial(
    client: httpx.AsyncClient, prosecutor: SignedInUser, proceeding_id: str, court: str = "PJ"
) -> None:
    """Investigation, prosecution, then trial before the court."""
    for status, on in (("investigation", "2026-04-10"), ("prosecution", "2026-05-01")):
        response = await move(client, prosecutor, proceeding_id, status, on)
        assert response.status_code == 200, response.text
    response = await move(client, prosecutor, proceeding_id, "trial", "2026-06-01", court=court)
    assert response.status_code == 200, response.text


async def record_outcome(
    client: httpx.AsyncClient, user: SignedInUser, defendant_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/defendants/{defendant_id}/outcome",
        json={"outcome_on": "2026-10-01", **body},
        headers=user.headers,
    )
