"""Facilities, placements that never overbook, the priority waitlist and unmet needs.

How overbooking is made impossible: a placement locks the rows of the facilities it may use
(SELECT ... FOR UPDATE, in id order so that two requests never wait on each other; on SQLite
the writing transaction's BEGIN IMMEDIATE serializes the same way), counts free beds from
`facility.in_use` and increments it in the same transaction. The check constraint
`in_use <= capacity` is the last guard: a bug that skipped the lock would fail, not overbook.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import discard_events_since, pending_events, record_event
from service.capacity import rules
from service.capacity.exceptions import (
    AlreadyPlaced,
    CapacityBelowOccupancy,
    FacilityCodeTaken,
    FacilityNotEligible,
    FacilityNotFound,
    PlacementNotActive,
    PlacementNotFound,
)
from service.capacity.models import (
    AllocationDecision,
    Facility,
    FacilityCapacityChange,
    Placement,
    PlacementRequest,
    UnmetNeed,
)
from service.capacity.schemas import (
    CapacityChange,
    CapacityFigures,
    CapacitySummary,
    FacilityCreate,
    FacilityPublic,
    PlacementCreate,
    PlacementPublic,
    PlacementResult,
    RegionCapacity,
)
from service.cases import service as case_service
from service.cases.rules import InvolvementBasis, TransitionTrigger
from service.core.db import for_update, table_of
from service.core.errors import InvalidInput
from service.core.security import Actor
from service.core.time import utcnow
from service.identity.exceptions import UnknownOrganization
from service.identity.service import get_organizations, get_organizations_by_code
from service.reference.service import region_exists

if TYPE_CHECKING:
    from service.cases.models import CaseFile

ACTIVE = (rules.PlacementStatus.held.value, rules.PlacementStatus.placed.value)
WAITING = "waiting"


def _view(f: Facility) -> rules.FacilityView:
    return rules.FacilityView(
        id=f.id,
        code=f.code,
        region=f.region,
        kind=f.kind,
        status=f.status,
        capacity=f.capacity,
        in_use=f.in_use,
        min_age=f.min_age,
        max_age=f.max_age,
        genders=frozenset(f.genders),
        exploitation_forms=frozenset(f.exploitation_forms),
        lgbti_specialized=f.lgbti_specialized,
        nationalities=frozenset(f.nationalities),
    )


async def _adjust_in_use(session: AsyncSession, facility: Facility, delta: int) -> None:
    """Change the beds in use atomically in SQL: an increment can never be lost, and the
    `never_overbooked` check refuses one that would exceed capacity."""
    table = table_of(Facility)
    new = (
        await session.exec(
            sa.update(table)
            .where(table.c.id == facility.id)
            .values(in_use=table.c.in_use + delta)
            .returning(table.c.in_use)
        )
    ).scalar_one()
    set_committed_value(facility, "in_use", new)


class _BedTaken(Exception):
    """The bed chosen without a lock was taken meanwhile."""


async def _take_bed(session: AsyncSession, facility: Facility) -> None:
    """Take a bed atomically, only if one is free: the statement that locks the facility row,
    run last so the row stays locked only through the commit."""
    table = table_of(Facility)
    taken = (
        await session.exec(
            sa.update(table)
            .where(
                table.c.id == facility.id,
                table.c.in_use < table.c.capacity,
                table.c.status == rules.FacilityStatus.open.value,
            )
            .values(in_use=table.c.in_use + 1)
            .returning(table.c.in_use)
        )
    ).scalar_one_or_none()
    if taken is None:
        raise _BedTaken(facility.code)
    set_committed_value(facility, "in_use", taken)


def _needs_json(needs: rules.Needs) -> dict[str, Any]:
    data = asdict(needs)
    data["exploitation"] = sorted(needs.exploitation)
    data["minor"] = needs.minor
    return data


def _needs_from_json(data: dict[str, Any]) -> rules.Needs:
    return rules.Needs(
        age=data["age"],
        gender=data["gender"],
        exploitation=frozenset(data["exploitation"]),
        region=data["region"],
        lgbti_specialized=data["lgbti_specialized"],
        nationality=data.get("nationality"),
    )


# ---------------------------------------------------------------- facilities


async def create_facility(
    session: AsyncSession, *, actor: Actor | None, data: FacilityCreate
) -> Facility:
    """A new facility with its first capacity record."""
    operator = (await get_organizations_by_code(session, [data.operator])).get(data.operator)
    if operator is None:
        raise UnknownOrganization("operator", f"no organization has the code {data.operator!r}")
    if not await region_exists(session, data.region):
        raise InvalidInput("region", f"{data.region!r} is not an INEI ubigeo department code")
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


async def change_capacity(
    session: AsyncSession, *, actor: Actor, facility_id: uuid.UUID, data: CapacityChange
) -> Facility:
    """Add or remove beds, close or reopen: dated, audited; freed beds go to the waitlist."""
    facility = (
        await session.exec(for_update(select(Facility).where(Facility.id == facility_id), session))
    ).first()
    if facility is None:
        raise FacilityNotFound(f"No facility {facility_id}.")
    before = {"capacity": facility.capacity, "status": facility.status}
    if data.capacity is not None:
        await _expire_holds_at(session, facility)
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
    await _offer_beds(session, actor=actor, facility=facility)
    return facility


async def _addresses_visible(
    session: AsyncSession, facilities: Sequence[Facility], organization_id: uuid.UUID
) -> set[uuid.UUID]:
    """Facilities whose address this organization may see: it operates them, or it is
    involved in the case of someone placed or held there."""
    visible = {f.id for f in facilities if f.organization_id == organization_id}
    others = [f.id for f in facilities if f.id not in visible]
    if others:
        residents = (
            await session.exec(
                select(Placement.facility_id, Placement.case_id).where(
                    col(Placement.facility_id).in_(others), col(Placement.status).in_(ACTIVE)
                )
            )
        ).all()
        involved = await case_service.cases_involving(
            session, organization_id=organization_id, case_ids=[c for _, c in residents]
        )
        visible |= {f for f, c in residents if c in involved}
    return visible


async def _figures_now(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
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
    session: AsyncSession, facilities: Sequence[Facility], *, actor: Actor
) -> list[FacilityPublic]:
    """Facilities as the actor may see them (the address only where allowed)."""
    occupied = await _figures_now(session, [f.id for f in facilities])
    orgs = await get_organizations(session, [f.organization_id for f in facilities])
    shown = await _addresses_visible(session, facilities, actor.organization_id)
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
                available=max(f.capacity - f.in_use, 0)
                if f.status == rules.FacilityStatus.open
                else 0,
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
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise FacilityNotFound(f"No facility {facility_id}.")
    return facility


async def facility_as_of(
    session: AsyncSession, *, actor: Actor, facility: Facility, as_of: datetime
) -> FacilityPublic:
    """The facility's capacity, occupancy and holds at a past moment, from dated history."""
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
            "available": max(capacity - occupied - held, 0)
            if status == rules.FacilityStatus.open
            else 0,
            "as_of": as_of,
        }
    )


async def list_facilities(
    session: AsyncSession,
    *,
    actor: Actor,
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
        case = await case_service.get_case_for(session, actor=actor, case_id=eligible_for_case)
        needs = await _needs_of(session, case, lgbti_specialized=False)
        facilities = [f for f in facilities if not rules.ineligibility(needs, _view(f))]
    return await facilities_public(session, facilities, actor=actor)


# ---------------------------------------------------------------- placement


async def _needs_of(
    session: AsyncSession, case: CaseFile, *, lgbti_specialized: bool
) -> rules.Needs:
    profile = await case_service.placement_profile(session, case)
    return rules.Needs(
        age=profile.age,
        gender=profile.gender,
        exploitation=profile.exploitation,
        region=profile.region,
        lgbti_specialized=lgbti_specialized,
        nationality=profile.nationality,
    )


async def _lock_facilities(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Facility]:
    stmt = select(Facility).where(col(Facility.id).in_(ids)).order_by(col(Facility.id))
    return list((await session.exec(for_update(stmt, session))).all())


async def _expire_holds_at(session: AsyncSession, facility: Facility) -> int:
    """Free the beds of this (locked) facility's expired holds."""
    now = utcnow()
    stale = (
        await session.exec(
            select(Placement).where(
                Placement.facility_id == facility.id,
                Placement.status == rules.PlacementStatus.held.value,
                col(Placement.hold_expires_at) <= now,
            )
        )
    ).all()
    for hold in stale:
        hold.status, hold.ended_at = rules.PlacementStatus.expired.value, hold.hold_expires_at
        session.add(hold)
        record_event(
            session,
            actor=None,
            action="placement.hold_expired",
            entity_type="case",
            entity_id=hold.case_id,
            changes={"placement_id": {"to": str(hold.id)}},
        )
    if stale:
        await session.flush()
        await _adjust_in_use(session, facility, -len(stale))
    return len(stale)


def _decision(
    case: CaseFile, needs: rules.Needs, choice: rules.Choice, *, reason: str | None = None
) -> AllocationDecision:
    return AllocationDecision(
        case_id=case.id,
        rule_version=rules.RULE_VERSION,
        inputs=_needs_json(needs),
        considered={
            "ineligible": {k: v for k, v in choice.considered.items() if v},
            "eligible_in_order": list(choice.eligible),
        },
        outcome=choice.outcome.value,
        facility_id=choice.facility_id,
        reason=reason or choice.why,
    )


async def _occupy(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case: CaseFile,
    facility: Facility,
    decision: AllocationDecision,
    hold_hours: int | None,
) -> Placement:
    """Record the placement and everything it implies, then take the bed (last)."""
    now = utcnow()
    placement = Placement(
        case_id=case.id,
        facility_id=facility.id,
        status=(rules.PlacementStatus.held if hold_hours else rules.PlacementStatus.placed).value,
        decision_id=decision.id,
        created_by=actor.user_id if actor else None,
        started_at=now,
        hold_expires_at=now + timedelta(hours=hold_hours) if hold_hours else None,
        placed_at=None if hold_hours else now,
    )
    session.add(placement)
    await session.flush()
    await case_service.involve(
        session,
        actor=actor,
        case_id=case.id,
        organization_id=facility.organization_id,
        basis=InvolvementBasis.placement,
        source_id=placement.id,
    )
    record_event(
        session,
        actor=actor,
        action="placement.held" if hold_hours else "placement.placed",
        entity_type="case",
        entity_id=case.id,
        changes={
            "placement_id": {"to": str(placement.id)},
            "facility": {"to": facility.code},
            "decision_id": {"to": str(decision.id)},
        },
    )
    if not hold_hours:
        await _on_placed(session, actor=actor, case_id=case.id)
    await session.flush()
    await _take_bed(session, facility)
    return placement


async def _place_without_waiting(
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    facility: Facility,
    needs: rules.Needs,
    choice: rules.Choice,
    hold_hours: int | None,
) -> tuple[AllocationDecision, Placement] | None:
    """Place on a choice made without locks, in a savepoint; None (and nothing written, no
    audit event kept) when the bed was taken meanwhile."""
    mark = pending_events(session)
    savepoint = await session.begin_nested()
    try:
        decision = _decision(case, needs, choice)
        session.add(decision)
        await session.flush()
        placement = await _occupy(
            session,
            actor=actor,
            case=case,
            facility=facility,
            decision=decision,
            hold_hours=hold_hours,
        )
    except _BedTaken:
        await savepoint.rollback()
        discard_events_since(session, mark)
        await session.refresh(case)
        return None
    await savepoint.commit()
    return decision, placement


async def _on_placed(session: AsyncSession, *, actor: Actor | None, case_id: uuid.UUID) -> None:
    await case_service.advance_case(
        session, actor=actor, case_id=case_id, trigger=TransitionTrigger.care_started
    )
    await alert_service.resolve_case_alerts(
        session, actor=actor, case_id=case_id, kind=AlertKind.minor_in_custody
    )


async def _waitlist_position(session: AsyncSession, request: PlacementRequest) -> int:
    waiting = PlacementRequest.status == WAITING
    same_or_higher_risk = sa.or_(
        col(PlacementRequest.risk_level) > request.risk_level,
        sa.and_(
            col(PlacementRequest.risk_level) == request.risk_level,
            col(PlacementRequest.requested_at) < request.requested_at,
        ),
    )
    if request.minor:
        ahead = sa.and_(col(PlacementRequest.minor).is_(True), same_or_higher_risk)
    else:
        ahead = sa.or_(col(PlacementRequest.minor).is_(True), same_or_higher_risk)
    count = (await session.exec(select(func.count()).where(waiting, ahead))).one()
    return int(count) + 1


async def _placed_result(
    session: AsyncSession,
    decision: AllocationDecision,
    placement: Placement,
    *,
    hold_hours: int | None,
) -> PlacementResult:
    outcome = rules.PlacementOutcome.held if hold_hours else rules.PlacementOutcome.placed
    decision.outcome = outcome.value
    session.add(decision)
    return PlacementResult(
        outcome=outcome,
        decision_id=decision.id,
        placement=await placement_public(session, placement),
    )


async def request_placement(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: PlacementCreate
) -> PlacementResult:
    """Find (or take the requested) bed; else wait in priority order; else an unmet need."""
    await case_service.lock_case(session, case.id)
    active = (
        await session.exec(
            select(Placement.id).where(
                Placement.case_id == case.id, col(Placement.status).in_(ACTIVE)
            )
        )
    ).first()
    if active is not None:
        raise AlreadyPlaced("The person already has a bed; end that placement first.")
    needs = await _needs_of(session, case, lgbti_specialized=data.lgbti_specialized)
    # Read as they are now (populate_existing), without waiting for any lock.
    current = select(Facility).execution_options(populate_existing=True)
    if data.facility_id is not None:
        requested = (await session.exec(current.where(Facility.id == data.facility_id))).first()
        if requested is None:
            raise FacilityNotFound(f"No facility {data.facility_id}.")
        reasons = rules.ineligibility(needs, _view(requested))
        if reasons:
            raise FacilityNotEligible(
                f"{requested.code} cannot take this person: {', '.join(reasons)}.", reasons=reasons
            )
        fresh = [requested]
    else:
        everything = (await session.exec(current)).all()
        fresh = [f for f in everything if not rules.ineligibility(needs, _view(f))]
    candidate_ids = [f.id for f in fresh]
    # First choose on those rows, prepare, and take the bed last. Only if that bed went
    # meanwhile, lock the candidates and decide again.
    first = rules.choose_facility(needs, [_view(f) for f in fresh])
    if first.outcome is rules.PlacementOutcome.placed:
        target = next(f for f in fresh if f.id == first.facility_id)
        done = await _place_without_waiting(
            session,
            actor=actor,
            case=case,
            facility=target,
            needs=needs,
            choice=first,
            hold_hours=data.hold_hours,
        )
        if done is not None:
            return await _placed_result(session, *done, hold_hours=data.hold_hours)
    locked = await _lock_facilities(session, candidate_ids)
    for facility in locked:
        await _expire_holds_at(session, facility)
    views = [_view(f) for f in locked]
    if not views or all(rules.ineligibility(needs, v) for v in views):
        views = [_view(f) for f in (await session.exec(select(Facility))).all()]
    choice = rules.choose_facility(needs, views)
    decision = _decision(case, needs, choice)
    session.add(decision)
    await session.flush()
    if choice.outcome is rules.PlacementOutcome.placed:
        facility = next(f for f in locked if f.id == choice.facility_id)
        placement = await _occupy(
            session,
            actor=actor,
            case=case,
            facility=facility,
            decision=decision,
            hold_hours=data.hold_hours,
        )
        return await _placed_result(session, decision, placement, hold_hours=data.hold_hours)
    if choice.outcome is rules.PlacementOutcome.waitlisted:
        request = (
            await session.exec(
                select(PlacementRequest).where(
                    PlacementRequest.case_id == case.id, PlacementRequest.status == WAITING
                )
            )
        ).first()
        if request is None:
            request = PlacementRequest(
                case_id=case.id,
                facility_id=data.facility_id,
                status=WAITING,
                minor=needs.minor,
                risk_level=data.risk_level,
                needs=_needs_json(needs),
                region=needs.region,
                requested_by=actor.user_id,
            )
            session.add(request)
            await session.flush()
            record_event(
                session,
                actor=actor,
                action="placement.waitlisted",
                entity_type="case",
                entity_id=case.id,
                changes={
                    "request_id": {"to": str(request.id)},
                    "risk_level": {"to": request.risk_level},
                },
            )
        return PlacementResult(
            outcome=choice.outcome,
            decision_id=decision.id,
            request_id=request.id,
            waitlist_position=await _waitlist_position(session, request),
        )
    assert choice.unmet_reason is not None
    session.add(
        UnmetNeed(
            case_id=case.id,
            reason=choice.unmet_reason.value,
            region=needs.region,
            needs=_needs_json(needs),
            decision_id=decision.id,
        )
    )
    record_event(
        session,
        actor=actor,
        action="placement.unmet_need",
        entity_type="case",
        entity_id=case.id,
        changes={"reason": {"to": choice.unmet_reason.value}},
    )
    await session.flush()
    return PlacementResult(
        outcome=choice.outcome, decision_id=decision.id, unmet_reason=choice.unmet_reason.value
    )


async def _offer_beds(session: AsyncSession, *, actor: Actor | None, facility: Facility) -> int:
    """Give a locked facility's free beds to the waiting, in priority order."""
    if facility.status != rules.FacilityStatus.open.value:
        return 0
    placed = 0
    view = _view(facility)
    while facility.in_use < facility.capacity:
        waiting = (
            await session.exec(
                for_update(
                    select(PlacementRequest)
                    .where(
                        PlacementRequest.status == WAITING,
                        sa.or_(
                            col(PlacementRequest.facility_id).is_(None),
                            col(PlacementRequest.facility_id) == facility.id,
                        ),
                    )
                    .order_by(
                        col(PlacementRequest.minor).desc(),
                        col(PlacementRequest.risk_level).desc(),
                        col(PlacementRequest.requested_at),
                        col(PlacementRequest.id),
                    )
                    .limit(200),
                    session,
                    skip_locked=True,
                )
            )
        ).all()
        chosen, case = None, None
        for request in waiting:
            if rules.ineligibility(_needs_from_json(request.needs), view):
                continue
            # A case busy in another transaction (asking for a bed itself, say) is passed
            # over rather than waited for: that transaction may be waiting for this facility.
            case = await case_service.lock_case(session, request.case_id, skip_locked=True)
            if case is not None:
                chosen = request
                break
        if chosen is None or case is None:
            break
        needs = _needs_from_json(chosen.needs)
        choice = rules.Choice(
            rules.PlacementOutcome.placed, facility_id=facility.id, eligible=(facility.code,)
        )
        decision = _decision(
            case,
            needs,
            choice,
            reason=f"a bed freed at {facility.code}; first eligible on the waitlist",
        )
        session.add(decision)
        await session.flush()
        placement = await _occupy(
            session, actor=actor, case=case, facility=facility, decision=decision, hold_hours=None
        )
        chosen.status, chosen.resolved_at, chosen.placement_id = "placed", utcnow(), placement.id
        session.add(chosen)
        view = _view(facility)
        placed += 1
    await session.flush()
    return placed


async def _placement_for(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> Placement:
    not_found = PlacementNotFound(f"No placement {placement_id} is visible to your organization.")
    placement = await session.get(Placement, placement_id)
    if placement is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=placement.case_id, otherwise=not_found
    )
    return placement


async def end_placement(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID, reason: rules.EndReason
) -> Placement:
    """Discharge or transfer: the bed is freed and offered to the waitlist, in one transaction."""
    placement = await _placement_for(session, actor=actor, placement_id=placement_id)
    [facility] = await _lock_facilities(session, [placement.facility_id])
    await session.refresh(placement)
    if placement.status not in ACTIVE:
        raise PlacementNotActive(f"This placement is {placement.status}.")
    placement.status, placement.ended_at, placement.end_reason = (
        rules.PlacementStatus.ended.value,
        utcnow(),
        reason.value,
    )
    session.add(placement)
    await session.flush()
    await _adjust_in_use(session, facility, -1)
    await case_service.end_involvement(
        session,
        actor=actor,
        case_id=placement.case_id,
        organization_id=facility.organization_id,
        basis=InvolvementBasis.placement,
        source_id=placement.id,
    )
    record_event(
        session,
        actor=actor,
        action=f"placement.{reason.value}",
        entity_type="case",
        entity_id=placement.case_id,
        changes={"placement_id": {"to": str(placement.id)}, "facility": {"to": facility.code}},
    )
    await _offer_beds(session, actor=actor, facility=facility)
    return placement


async def confirm_arrival(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> Placement:
    """The person held a bed for has arrived: the hold becomes a placement."""
    placement = await _placement_for(session, actor=actor, placement_id=placement_id)
    [facility] = await _lock_facilities(session, [placement.facility_id])
    await _expire_holds_at(session, facility)
    await session.refresh(placement)
    if placement.status != rules.PlacementStatus.held.value:
        raise PlacementNotActive(f"This placement is {placement.status}, not held.")
    placement.status, placement.placed_at = rules.PlacementStatus.placed.value, utcnow()
    session.add(placement)
    record_event(
        session,
        actor=actor,
        action="placement.arrived",
        entity_type="case",
        entity_id=placement.case_id,
        changes={"placement_id": {"to": str(placement.id)}},
    )
    await session.flush()
    await _on_placed(session, actor=actor, case_id=placement.case_id)
    return placement


async def expire_holds(session: AsyncSession) -> int:
    """Free the beds of every expired hold and offer them to the waitlist (the sweeper)."""
    ids = (
        await session.exec(
            select(Placement.facility_id)
            .where(
                Placement.status == rules.PlacementStatus.held.value,
                col(Placement.hold_expires_at) <= utcnow(),
            )
            .distinct()
        )
    ).all()
    freed = 0
    for facility in await _lock_facilities(session, list(ids)):
        freed += await _expire_holds_at(session, facility)
        await _offer_beds(session, actor=None, facility=facility)
    return freed


async def placement_public(session: AsyncSession, placement: Placement) -> PlacementPublic:
    facility = await session.get(Facility, placement.facility_id)
    assert facility is not None
    return PlacementPublic(
        id=placement.id,
        case_id=placement.case_id,
        facility_id=placement.facility_id,
        facility_code=facility.code,
        status=rules.PlacementStatus(placement.status),
        started_at=placement.started_at,
        hold_expires_at=placement.hold_expires_at,
        placed_at=placement.placed_at,
        ended_at=placement.ended_at,
        end_reason=rules.EndReason(placement.end_reason) if placement.end_reason else None,
    )


async def get_decision(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> AllocationDecision:
    placement = await _placement_for(session, actor=actor, placement_id=placement_id)
    decision = await session.get(AllocationDecision, placement.decision_id)
    assert decision is not None
    return decision


async def is_waiting(session: AsyncSession, case_id: uuid.UUID) -> bool:
    row = (
        await session.exec(
            select(PlacementRequest.id).where(
                PlacementRequest.case_id == case_id, PlacementRequest.status == WAITING
            )
        )
    ).first()
    return row is not None


async def capacity_summary(session: AsyncSession) -> CapacitySummary:
    """National and regional beds, use and waitlist; unmet needs by reason."""
    facilities = (await session.exec(select(Facility))).all()
    occupied = await _figures_now(session, [f.id for f in facilities])
    waiting = dict(
        (
            await session.exec(
                select(PlacementRequest.region, func.count())
                .where(PlacementRequest.status == WAITING)
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
        r["available"] += max(f.capacity - f.in_use, 0) if is_open else 0
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
                "available": max(f.capacity - f.in_use, 0),
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


async def case_placements(session: AsyncSession, case: CaseFile) -> list[PlacementPublic]:
    """Every placement of a case, newest first."""
    rows = (
        await session.exec(
            select(Placement)
            .where(Placement.case_id == case.id)
            .order_by(col(Placement.started_at).desc())
        )
    ).all()
    return [await placement_public(session, p) for p in rows]
