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
