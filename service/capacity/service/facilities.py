"""The facility directory: facilities with beds that really exist, their dated capacity,
whom they take, and who may see their address. New beds, a new facility or a reopened one
serve the waitlist at once, exactly as a discharge does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.capacity import rules
from service.capacity.exceptions import (
    CapacityBelowOccupancy,
    FacilityCodeTaken,
    FacilityNotFound,
)
from service.capacity.models import Facility, FacilityCapacityChange, Placement
from service.capacity.schemas import CapacityChange, FacilityCreate, FacilityPublic
from service.capacity.service import beds, waitlist
from service.cases import service as case_service
from service.core.db import for_update
from service.core.errors import Forbidden, InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.preconditions import IfMatch, check_version
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import rules as identity_rules
from service.identity.exceptions import UnknownOrganization
from service.identity.service import get_organizations, get_organizations_by_code
from service.reference.service import region_exists


async def create_facility(
    session: AsyncSession, *, actor: Actor | None, data: FacilityCreate
) -> Facility:
    """A new facility with its first capacity record."""
    operator = (await get_organizations_by_code(session, [data.operator])).get(data.operator)
    if operator is None:
        raise UnknownOrganization("operator", "no organization has this code")
    if not await region_exists(session, data.region):
        raise InvalidInput("region", "not an INEI ubigeo department code")
    if (await session.exec(select(Facility.id).where(Facility.code == data.code))).first():
        raise FacilityCodeTaken(f"A facility with the code {data.code!r} exists.")
    facility = Facility.model_validate(
        data.model_dump(mode="json", exclude={"operator"}),
        update={"organization_id": operator.id, "status": rules.FacilityStatus.open.value},
    )
    session.add(facility)
    await session.flush()
    session.add(
        FacilityCapacityChange(
            facility_id=facility.id,
            effective_at=facility.created_at,
            capacity=facility.capacity,
            status=facility.status,
            reason="opened",
            recorded_by=actor.user_id if actor else None,
        )
    )
    record_event(
        session,
        actor=actor,
        action="facility.created",
        entity_type="facility",
        entity_id=facility.id,
        changes={
            "code": {"to": facility.code},
            "capacity": {"to": facility.capacity},
            "region": {"to": facility.region},
            "kind": {"to": facility.kind},
        },
    )
    await session.flush()
    await waitlist.offer_beds(session, actor=actor, facility=facility)
    return facility


async def upsert_facilities(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Create the facilities whose codes are new (from a seed); returns how many were created."""
    existing = set((await session.exec(select(Facility.code))).all())
    created = 0
    for row in rows:
        if row["code"] in existing:
            continue
        fields = {k: v for k, v in row.items() if k in FacilityCreate.model_fields}
        await create_facility(session, actor=None, data=FacilityCreate.model_validate(fields))
        created += 1
    return created


def _require_permission(actor: Actor, permission: identity_rules.Permission) -> None:
    if not identity_rules.has_permission(actor.role, permission):
        raise Forbidden(f"The role {actor.role!r} may not do this ({permission.value}).")


async def change_capacity(
    session: AsyncSession,
    *,
    actor: Actor,
    facility_id: uuid.UUID,
    data: CapacityChange,
    if_match: IfMatch | None = None,
) -> Facility:
    """Add or remove beds, close or reopen: dated, audited; freed beds go to the waitlist.
    With If-Match, only if the facility is still as the actor read it (beds in use included).
    Only a role that manages facilities may (checked here, so every caller is covered)."""
    _require_permission(actor, identity_rules.Permission.facilities_manage)
    facility = (
        await session.exec(for_update(select(Facility).where(Facility.id == facility_id), session))
    ).first()
    if facility is None:
        raise FacilityNotFound(f"No facility {facility_id}.")
    check_version(if_match, facility)
    before = {"capacity": facility.capacity, "status": facility.status}
    if data.capacity is not None:
        await beds.expire_holds_at(session, facility)
        if data.capacity < facility.in_use:
            raise CapacityBelowOccupancy(
                f"{facility.in_use} beds are in use; discharge or transfer before reducing to"
                f" {data.capacity}."
            )
        facility.capacity = data.capacity
    if data.status is not None:
        facility.status = data.status.value
    session.add(facility)
    session.add(
        FacilityCapacityChange(
            facility_id=facility.id,
            effective_at=utcnow(),
            capacity=facility.capacity,
            status=facility.status,
            reason=data.reason,
            recorded_by=actor.user_id,
        )
    )
    record_event(
        session,
        actor=actor,
        action="facility.capacity_changed",
        entity_type="facility",
        entity_id=facility.id,
        changes={
            "capacity": {"from": before["capacity"], "to": facility.capacity},
            "status": {"from": before["status"], "to": facility.status},
            "reason": {"to": data.reason},
        },
    )
    await session.flush()
    await waitlist.offer_beds(session, actor=actor, facility=facility)
    return facility


async def _addresses_visible(
    session: AsyncSession, facilities: Sequence[Facility], actor: Actor | None
) -> set[uuid.UUID]:
    """Facilities whose address the actor may see: its organization operates them, or (for
    a role that sees cases) is involved in the case of someone placed or held there. An
    analyst, auditor or administrator learns nothing of a case from an address shown. No
    actor (the operator's command line) sees none."""
    if actor is None:
        return set()
    organization_id = actor.organization_id
    visible = {f.id for f in facilities if f.organization_id == organization_id}
    others = [f.id for f in facilities if f.id not in visible]
    if others and identity_rules.has_permission(actor.role, identity_rules.Permission.cases_read):
        residents = (
            await session.exec(
                select(Placement.facility_id, Placement.case_id).where(
                    col(Placement.facility_id).in_(others), col(Placement.status).in_(beds.ACTIVE)
                )
            )
        ).all()
        involved = await case_service.cases_involving(
            session, organization_id=organization_id, case_ids=[c for _, c in residents]
        )
        visible |= {f for f, c in residents if c in involved}
    return visible


async def placed_counts(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.exec(
        select(Placement.facility_id, func.count())
        .where(
            col(Placement.facility_id).in_(ids),
            Placement.status == rules.PlacementStatus.placed.value,
        )
        .group_by(col(Placement.facility_id))
    )
    return dict(rows.all())


async def facilities_public(
    session: AsyncSession, facilities: Sequence[Facility], *, actor: Actor | None
) -> list[FacilityPublic]:
    """Facilities as the actor may see them (the address only where allowed)."""
    occupied = await placed_counts(session, [f.id for f in facilities])
    orgs = await get_organizations(session, [f.organization_id for f in facilities])
    shown = await _addresses_visible(session, facilities, actor)
    result = []
    for f in facilities:
        placed = occupied.get(f.id, 0)
        result.append(
            FacilityPublic(
                id=f.id,
                code=f.code,
                name=f.name,
                operator=orgs[f.organization_id].code,
                region=f.region,
                kind=rules.FacilityKind(f.kind),
                status=rules.FacilityStatus(f.status),
                capacity=f.capacity,
                occupied=placed,
                held=f.in_use - placed,
                available=rules.available_beds(
                    capacity=f.capacity, in_use=f.in_use, status=f.status
                ),
                min_age=f.min_age,
                max_age=f.max_age,
                genders=f.genders,
                exploitation_forms=f.exploitation_forms,
                nationalities=f.nationalities,
                lgbti_specialized=f.lgbti_specialized,
                address=f.address if f.id in shown else None,
            )
        )
    return result


async def get_facility(session: AsyncSession, facility_id: uuid.UUID) -> Facility:
    """A facility by id; FacilityNotFound otherwise."""
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise FacilityNotFound(f"No facility {facility_id}.")
    return facility


async def get_facility_by_code(session: AsyncSession, code: str) -> Facility:
    """A facility by its code; FacilityNotFound otherwise."""
    facility = (await session.exec(select(Facility).where(Facility.code == code))).first()
    if facility is None:
        raise FacilityNotFound("No facility has this code.")
    return facility


async def facility_as_of(
    session: AsyncSession, *, actor: Actor, facility: Facility, as_of: datetime
) -> FacilityPublic:
    """The facility's capacity, occupancy and holds at a past moment, from dated history."""
    refuse_implausible(rules.as_of_problem(as_of))
    change = (
        await session.exec(
            select(FacilityCapacityChange)
            .where(
                FacilityCapacityChange.facility_id == facility.id,
                col(FacilityCapacityChange.effective_at) <= as_of,
            )
            .order_by(
                col(FacilityCapacityChange.effective_at).desc(),
                col(FacilityCapacityChange.recorded_at).desc(),
            )
        )
    ).first()
    placements = (
        await session.exec(
            select(Placement).where(
                Placement.facility_id == facility.id, col(Placement.started_at) <= as_of
            )
        )
    ).all()

    def alive(p: Placement) -> bool:
        return p.ended_at is None or p.ended_at > as_of

    occupied = sum(
        1 for p in placements if p.placed_at is not None and p.placed_at <= as_of and alive(p)
    )
    held = sum(
        1
        for p in placements
        if (p.placed_at is None or p.placed_at > as_of)
        and alive(p)
        and p.hold_expires_at is not None
        and p.hold_expires_at > as_of
    )
    [public] = await facilities_public(session, [facility], actor=actor)
    capacity = change.capacity if change else 0
    status = rules.FacilityStatus(change.status) if change else rules.FacilityStatus.closed
    return public.model_copy(
        update={
            "capacity": capacity,
            "status": status,
            "occupied": occupied,
            "held": held,
            "available": rules.available_beds(
                capacity=capacity, in_use=occupied + held, status=status
            ),
            "as_of": as_of,
        }
    )


async def list_facilities(
    session: AsyncSession,
    *,
    actor: Actor | None,
    region: str | None = None,
    kind: rules.FacilityKind | None = None,
    eligible_for_case: uuid.UUID | None = None,
    has_free_bed: bool | None = None,
) -> list[FacilityPublic]:
    """The directory of facilities, filtered."""
    stmt = select(Facility)
    if region is not None:
        stmt = stmt.where(Facility.region == region)
    if kind is not None:
        stmt = stmt.where(Facility.kind == kind.value)
    if has_free_bed is not None:
        free = sa.and_(
            col(Facility.in_use) < col(Facility.capacity),
            col(Facility.status) == rules.FacilityStatus.open.value,
        )
        stmt = stmt.where(free if has_free_bed else sa.not_(free))
    facilities = list(
        (await session.exec(stmt.order_by(col(Facility.region), col(Facility.code)))).all()
    )
    if eligible_for_case is not None:
        # The filter reads the person's age, gender and forms of exploitation: a role that
        # sees no case is refused whatever the id (so nothing says whether the case exists),
        # and a case not visible to the caller's organization does not exist for it.
        if actor is None:
            raise Forbidden("Only a user who sees cases may filter by a case.")
        _require_permission(actor, identity_rules.Permission.cases_read)
        case = await case_service.get_case_for(session, actor=actor, case_id=eligible_for_case)
        needs = await beds.needs_of(session, case, lgbti_specialized=False)
        facilities = [f for f in facilities if not rules.ineligibility(needs, beds.view(f))]
    return await facilities_public(session, facilities, actor=actor)
