"""Reports over the capacity domain: the national and regional capacity summary, and the
facility directory in the Open Referral HSDS shape. Aggregates only; no addresses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import rules
from service.capacity.models import Facility, Placement, PlacementRequest, UnmetNeed
from service.capacity.schemas import CapacityFigures, CapacitySummary, RegionCapacity
from service.capacity.service.facilities import placed_counts
from service.core.db import table_of
from service.core.metrics import GaugeReading, Sample
from service.core.time import utcnow
from service.identity.service import get_organizations


async def capacity_summary(session: AsyncSession) -> CapacitySummary:
    """National and regional beds, use and waitlist; unmet needs by reason."""
    facilities = (await session.exec(select(Facility))).all()
    occupied = await placed_counts(session, [f.id for f in facilities])
    waiting = dict(
        (
            await session.exec(
                select(PlacementRequest.region, func.count())
                .where(PlacementRequest.status == rules.RequestStatus.waiting.value)
                .group_by(col(PlacementRequest.region))
            )
        ).all()
    )
    unmet = dict(
        (
            await session.exec(
                select(UnmetNeed.reason, func.count()).group_by(col(UnmetNeed.reason))
            )
        ).all()
    )
    regions: dict[str, dict[str, int]] = {}
    for f in facilities:
        r = regions.setdefault(f.region, {"capacity": 0, "occupied": 0, "held": 0, "available": 0})
        is_open = f.status == rules.FacilityStatus.open.value
        placed = occupied.get(f.id, 0)
        r["capacity"] += f.capacity if is_open else 0
        r["occupied"] += placed
        r["held"] += f.in_use - placed
        r["available"] += rules.available_beds(
            capacity=f.capacity, in_use=f.in_use, status=f.status
        )
    for region in waiting:
        regions.setdefault(region, {"capacity": 0, "occupied": 0, "held": 0, "available": 0})
    rows = [
        RegionCapacity(region=code, waitlist=int(waiting.get(code, 0)), **figures)
        for code, figures in sorted(regions.items())
    ]
    national = CapacityFigures(
        capacity=sum(r.capacity for r in rows),
        occupied=sum(r.occupied for r in rows),
        held=sum(r.held for r in rows),
        available=sum(r.available for r in rows),
        waitlist=sum(r.waitlist for r in rows),
    )
    return CapacitySummary(
        national=national, regions=rows, unmet_needs={k: int(v) for k, v in unmet.items()}
    )


async def hsds_directory(session: AsyncSession) -> dict[str, Any]:
    """The facility directory in the Open Referral HSDS shape (no addresses: they are private)."""
    facilities = (await session.exec(select(Facility).order_by(col(Facility.code)))).all()
    orgs = await get_organizations(session, [f.organization_id for f in facilities])
    now = utcnow().isoformat()
    return {
        "organizations": [
            {
                "id": str(o.id),
                "name": o.name,
                "alternate_name": o.code,
                "description": f"{o.kind} ({o.code})",
            }
            for o in sorted(orgs.values(), key=lambda o: o.code)
        ],
        "services": [
            {
                "id": str(f.id),
                "organization_id": str(f.organization_id),
                "name": f.name,
                "status": "active" if f.status == rules.FacilityStatus.open.value else "inactive",
                "eligibility_description": _eligibility_text(f),
            }
            for f in facilities
        ],
        "locations": [
            {
                "id": str(f.id),
                "organization_id": str(f.organization_id),
                "name": f.name,
                "location_type": "physical",
                "region": f.region,
            }
            for f in facilities
        ],
        "service_capacity": [
            {
                "id": str(f.id),
                "service_id": str(f.id),
                "unit": {"name": "bed"},
                "available": rules.available_beds(
                    capacity=f.capacity, in_use=f.in_use, status=f.status
                ),
                "maximum": f.capacity,
                "updated": now,
            }
            for f in facilities
        ],
    }


def _eligibility_text(f: Facility) -> str:
    genders = ", ".join(f.genders) or "any gender"
    forms = ", ".join(f.exploitation_forms) or "any form of exploitation"
    lgbti = "; LGBTI-specialized" if f.lgbti_specialized else ""
    return f"ages {f.min_age}-{f.max_age}; {genders}; {forms}{lgbti}"


def placements_known_on(
    known_on: datetime, *, during_from: datetime, during_before: datetime
) -> sa.Select[tuple[uuid.UUID, str, datetime, datetime | None, uuid.UUID]]:
    """Stays in a bed (placed, not only held) that overlap [during_from, during_before), as
    known on `known_on`: `case_id`, `facility_kind`, `placed_at`, `ended_at` when the stay
    had ended by `known_on` (NULL: still in the bed then), and `facility_id`. As SQL, for the
    statistics and the simulation's calibration."""
    placement, facility = table_of(Placement), table_of(Facility)
    ended = sa.case((placement.c.ended_at <= known_on, placement.c.ended_at))
    return (
        sa.select(
            placement.c.case_id,
            facility.c.kind.label("facility_kind"),
            placement.c.placed_at,
            ended.label("ended_at"),
            placement.c.facility_id,
        )
        .join(facility, facility.c.id == placement.c.facility_id)
        .where(
            placement.c.placed_at.is_not(None),
            placement.c.placed_at <= known_on,
            placement.c.placed_at < during_before,
            sa.or_(
                placement.c.ended_at.is_(None),
                placement.c.ended_at > known_on,
                placement.c.ended_at > during_from,
            ),
        )
    )


def facility_census() -> sa.Select[tuple[Any, ...]]:
    """Every facility as it stands now, with whom it may take and its beds occupied (placed,
    not only held): `facility_id`, `code`, `region`, `kind`, `status`, `capacity`, `min_age`,
    `max_age`, `genders`, `exploitation_forms`, `nationalities`, `lgbti_specialized`,
    `occupied`. As SQL, for the simulation's calibration."""
    facility, placement = table_of(Facility), table_of(Placement)
    occupied = (
        sa.select(sa.func.count())
        .where(
            placement.c.facility_id == facility.c.id,
            placement.c.status == rules.PlacementStatus.placed.value,
        )
        .scalar_subquery()
    )
    return sa.select(
        facility.c.id.label("facility_id"),
        facility.c.code,
        facility.c.region,
        facility.c.kind,
        facility.c.status,
        facility.c.capacity,
        facility.c.min_age,
        facility.c.max_age,
        facility.c.genders,
        facility.c.exploitation_forms,
        facility.c.nationalities,
        facility.c.lgbti_specialized,
        occupied.label("occupied"),
    ).order_by(facility.c.region, facility.c.code)


def unmet_needs_known_on(
    known_on: datetime, *, recorded_from: datetime, recorded_before: datetime
) -> sa.Select[tuple[uuid.UUID, str]]:
    """Unmet needs recorded in [recorded_from, recorded_before) and by `known_on`: `case_id`,
    `reason`. As SQL, for the statistics."""
    need = table_of(UnmetNeed)
    return sa.select(need.c.case_id, need.c.reason).where(
        need.c.recorded_at >= recorded_from,
        need.c.recorded_at < recorded_before,
        need.c.recorded_at <= known_on,
    )


async def occupancy_gauges(session: AsyncSession) -> list[GaugeReading]:
    """For /metrics: each facility's beds and beds in use (placed or held), and the waitlist
    by region and the facility asked for ("" when any facility of the region will do)."""
    facilities = (
        await session.exec(
            select(Facility.code, Facility.region, Facility.capacity, Facility.in_use).where(
                Facility.status == rules.FacilityStatus.open.value
            )
        )
    ).all()
    waiting = (
        await session.exec(
            select(PlacementRequest.region, Facility.code, func.count())
            .select_from(PlacementRequest)
            .join(Facility, col(Facility.id) == col(PlacementRequest.facility_id), isouter=True)
            .where(PlacementRequest.status == rules.RequestStatus.waiting.value)
            .group_by(col(PlacementRequest.region), col(Facility.code))
        )
    ).all()
    labels = ["facility", "region"]
    return [
        GaugeReading(
            "ruta_facility_beds",
            "Beds of each open facility.",
            labels,
            [Sample({"facility": c, "region": r}, cap) for c, r, cap, _ in facilities],
        ),
        GaugeReading(
            "ruta_facility_beds_in_use",
            "Beds placed or held in each open facility.",
            labels,
            [Sample({"facility": c, "region": r}, used) for c, r, _, used in facilities],
        ),
        GaugeReading(
            "ruta_waitlist_requests",
            'Placement requests waiting, by region and the facility asked for ("": any).',
            labels,
            [Sample({"facility": c or "", "region": r}, n) for r, c, n in waiting],
        ),
    ]
