"""Facilities and their beds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity.models import Facility
from service.capacity.rules import FacilityKind, FacilityStatus
from service.identity.service import get_organization_by_code

_FACILITY_FIELDS = (
    "code",
    "name",
    "region",
    "kind",
    "capacity",
    "min_age",
    "max_age",
    "genders",
    "exploitation_forms",
    "lgbti_specialized",
    "address",
)


async def upsert_facilities(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Create the facilities whose codes are new (from a seed); returns how many were created."""
    existing = set((await session.exec(select(Facility.code))).all())
    created = 0
    for row in rows:
        if row["code"] in existing:
            continue
        org = await get_organization_by_code(session, row["operator"])
        values = {k: row[k] for k in _FACILITY_FIELDS if k in row}
        values["kind"] = FacilityKind(values["kind"]).value
        facility = Facility.model_validate(
            values,
            update={
                "organization_id": org.id,
                "status": FacilityStatus(row.get("status", "open")).value,
            },
        )
        session.add(facility)
        created += 1
    await session.flush()
    return created
