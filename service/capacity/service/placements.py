"""Placements: finding or taking a bed, holding one for someone in transit, arrival,
discharge and transfer, and what closing a case releases.

How a request is placed without waiting on locks: choose on the facilities as they are now,
prepare everything in a savepoint, and take the bed last with the conditional increment of
`beds.take_bed`. Only when that bed went meanwhile are the candidate facilities locked (in
id order) and the choice made again. A placement that is not possible becomes a waiting
request in priority order, or an unmet need when no facility in the country could take the
person. Every run of the rules is stored as an allocation decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import discard_events_since, pending_events, record_event
from service.capacity import rules
from service.capacity.exceptions import (
    AlreadyPlaced,
    CaseClosedForPlacement,
    FacilityNotEligible,
    FacilityNotFound,
    PlacementConsentRequired,
    PlacementNotActive,
    PlacementNotEntitled,
    PlacementNotFound,
)
from service.capacity.models import (
    AllocationDecision,
    Facility,
    Placement,
    UnmetNeed,
)
from service.capacity.schemas import PlacementCreate, PlacementPublic, PlacementResult
from service.capacity.service import beds, waitlist
from service.cases import service as case_service
from service.cases.rules import CaseStatus
from service.consent import service as consent_service
from service.consent.rules import ConsentPurpose
from service.core.security import Actor
from service.core.time import utcnow

if TYPE_CHECKING:
    from service.cases.models import CaseFile


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
        decision = beds.decision_for(case.id, needs, choice)
        session.add(decision)
        await session.flush()
        placement = await beds.occupy(
            session,
            actor=actor,
            case_id=case.id,
            facility=facility,
            decision=decision,
            hold_hours=hold_hours,
        )
    except beds.BedTaken:
        await savepoint.rollback()
        discard_events_since(session, mark)
        await session.refresh(case)
        return None
    await savepoint.commit()
    return decision, placement


async def _placed_result(
    session: AsyncSession,
    *,
    actor: Actor,
    decision: AllocationDecision,
    placement: Placement,
    facility: Facility,
    hold_hours: int | None,
) -> PlacementResult:
    """The answer for a bed taken by a request; the case leaves the waitlist if it was on it."""
    await waitlist.withdraw_waiting_of_case(
        session,
        actor=actor,
        case_id=placement.case_id,
        reason=rules.WithdrawReason.placed_directly,
    )
    outcome = rules.PlacementOutcome.held if hold_hours else rules.PlacementOutcome.placed
    decision.outcome = outcome.value
    session.add(decision)
    [public] = await placements_public(session, [placement], known=[facility])
    return PlacementResult(outcome=outcome, decision_id=decision.id, placement=public)


async def _require_entitled(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    facility: Facility | None,
    holds_shelter_referral: bool,
    needs: rules.Needs,
) -> None:
    """The placement rule (`rules.placement_refusal`): who may ask for a bed, and whether an
    adult consented to services."""
    refusal = rules.placement_refusal(
        facility_named=facility is not None,
        operates_facility=facility is not None
        and facility.organization_id == actor.organization_id,
        holds_shelter_referral=holds_shelter_referral,
        minor=needs.minor,
        consents_to_services=await consent_service.consented_to(
            session, case_id=case_id, purpose=ConsentPurpose.services
        ),
    )
    if refusal is rules.PlacementRefusal.not_entitled:
        raise PlacementNotEntitled(
            "Beds are allocated by the organization that operates the facility, or by one that"
            " accepted a shelter referral for this case (any facility, or a search of the"
            " country); your organization is neither."
        )
    if refusal is rules.PlacementRefusal.consent_required:
        raise PlacementConsentRequired(
            "An adult is placed only with her consent in force naming the purpose 'services'."
        )


async def request_placement(
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    data: PlacementCreate,
    holds_shelter_referral: bool,
) -> PlacementResult:
    """Find (or take the requested) bed; else wait in priority order; else an unmet need.
    Only an organization that operates the requested facility, or that holds an accepted
    shelter referral for the case (`holds_shelter_referral`, which the placement flow
    finds out), may ask; an adult needs her consent to services."""
    locked = await case_service.lock_case(session, case.id)
    assert locked is not None
    if locked.status == CaseStatus.closed.value:
        raise CaseClosedForPlacement("A closed case is not placed; reopen it first.")
    if await beds.person_has_bed(session, locked):
        raise AlreadyPlaced("The person already has a bed; end that placement first.")
    needs = await beds.needs_of(session, locked, lgbti_specialized=data.lgbti_specialized)
    # Read as they are now (populate_existing), without waiting for any lock.
    current = select(Facility).execution_options(populate_existing=True)
    requested = None
    if data.facility_id is not None:
        requested = (await session.exec(current.where(Facility.id == data.facility_id))).first()
        if requested is None:
            raise FacilityNotFound(f"No facility {data.facility_id}.")
    await _require_entitled(
        session,
        actor=actor,
        case_id=locked.id,
        facility=requested,
        holds_shelter_referral=holds_shelter_referral,
        needs=needs,
    )
    if requested is not None:
        reasons = rules.ineligibility(needs, beds.view(requested))
        if reasons:
            raise FacilityNotEligible(
                f"{requested.code} cannot take this person: {', '.join(reasons)}.", reasons=reasons
            )
        fresh = [requested]
    else:
        everything = (await session.exec(current)).all()
        fresh = [f for f in everything if not rules.ineligibility(needs, beds.view(f))]
    candidate_ids = [f.id for f in fresh]
    # First choose on those rows, prepare, and take the bed last. Only if that bed went
    # meanwhile, lock the candidates and decide again.
    first = rules.choose_facility(needs, [beds.view(f) for f in fresh])
    if first.outcome is rules.PlacementOutcome.placed:
        target = next(f for f in fresh if f.id == first.facility_id)
        done = await _place_without_waiting(
            session,
            actor=actor,
            case=locked,
            facility=target,
            needs=needs,
            choice=first,
            hold_hours=data.hold_hours,
        )
        if done is not None:
            decision, placement = done
            return await _placed_result(
                session,
                actor=actor,
                decision=decision,
                placement=placement,
                facility=target,
                hold_hours=data.hold_hours,
            )
    facilities = await beds.lock_facilities(session, candidate_ids)
    for facility in facilities:
        await beds.expire_holds_at(session, facility)
    views = [beds.view(f) for f in facilities]
    if not views or all(rules.ineligibility(needs, v) for v in views):
        views = [beds.view(f) for f in (await session.exec(select(Facility))).all()]
    choice = rules.choose_facility(needs, views)
    decision = beds.decision_for(locked.id, needs, choice)
    session.add(decision)
    await session.flush()
    if choice.outcome is rules.PlacementOutcome.placed:
        facility = next(f for f in facilities if f.id == choice.facility_id)
        placement = await beds.occupy(
            session,
            actor=actor,
            case_id=locked.id,
            facility=facility,
            decision=decision,
            hold_hours=data.hold_hours,
        )
        return await _placed_result(
            session,
            actor=actor,
            decision=decision,
            placement=placement,
            facility=facility,
            hold_hours=data.hold_hours,
        )
    if choice.outcome is rules.PlacementOutcome.waitlisted:
        request = await waitlist.enqueue(
            session,
            actor=actor,
            case_id=locked.id,
            needs=needs,
            facility_id=data.facility_id,
            risk_level=data.risk_level,
        )
        return PlacementResult(
            outcome=choice.outcome,
            decision_id=decision.id,
            request_id=request.id,
            waitlist_position=await waitlist.position(session, request),
        )
    assert choice.unmet_reason is not None
    session.add(
        UnmetNeed(
            case_id=locked.id,
            reason=choice.unmet_reason.value,
            region=needs.region,
            needs=beds.needs_json(needs),
            decision_id=decision.id,
        )
    )
    record_event(
        session,
        actor=actor,
        action="placement.unmet_need",
        entity_type="case",
        entity_id=locked.id,
        changes={"reason": {"to": choice.unmet_reason.value}},
    )
    await session.flush()
    return PlacementResult(
        outcome=choice.outcome, decision_id=decision.id, unmet_reason=choice.unmet_reason.value
    )


async def get_visible_placement(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> Placement:
    """The placement, if its case is visible to the caller's organization; 404 otherwise."""
    not_found = PlacementNotFound(f"No placement {placement_id} is visible to your organization.")
    placement = await session.get(Placement, placement_id)
    if placement is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=placement.case_id, otherwise=not_found
    )
    return placement


def _require_manager(actor: Actor, facility: Facility, *, holds_shelter_referral: bool) -> None:
    if not rules.manages_placement(
        operates_facility=facility.organization_id == actor.organization_id,
        holds_shelter_referral=holds_shelter_referral,
    ):
        raise PlacementNotEntitled(
            "A placement is managed by the organization that operates the facility, or by one"
            " that accepted a shelter referral for this case; your organization is neither."
        )


async def end_placement(
    session: AsyncSession,
    *,
    actor: Actor,
    placement: Placement,
    reason: rules.EndReason,
    holds_shelter_referral: bool,
) -> Placement:
    """Discharge or transfer: the bed is freed and offered to the waitlist, in one transaction.
    Only the facility's operator or the holder of an accepted shelter referral may (403).
    `placement` is one `get_visible_placement` gave the caller."""
    [facility] = await beds.lock_facilities(session, [placement.facility_id])
    _require_manager(actor, facility, holds_shelter_referral=holds_shelter_referral)
    await session.refresh(placement)
    if placement.status not in beds.ACTIVE:
        raise PlacementNotActive(f"This placement is {placement.status}.")
    await beds.free_bed(session, actor=actor, placement=placement, facility=facility, reason=reason)
    await waitlist.offer_beds(session, actor=actor, facility=facility)
    return placement


async def confirm_arrival(
    session: AsyncSession, *, actor: Actor, placement: Placement, holds_shelter_referral: bool
) -> Placement:
    """The person held a bed for has arrived: the hold becomes a placement. Only the
    facility's operator or the holder of an accepted shelter referral may (403).
    `placement` is one `get_visible_placement` gave the caller."""
    [facility] = await beds.lock_facilities(session, [placement.facility_id])
    _require_manager(actor, facility, holds_shelter_referral=holds_shelter_referral)
    await beds.expire_holds_at(session, facility)
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
    await beds.on_placed(session, actor=actor, case_id=placement.case_id)
    return placement


async def expire_holds(session: AsyncSession, *, limit: int = 200) -> int:
    """Free the beds of expired holds (at most `limit` facilities per call) and offer them to
    the waitlist (the sweeper)."""
    ids = (
        await session.exec(
            select(Placement.facility_id)
            .where(
                Placement.status == rules.PlacementStatus.held.value,
                col(Placement.hold_expires_at) <= utcnow(),
            )
            .distinct()
            .limit(limit)
        )
    ).all()
    freed = 0
    for facility in await beds.lock_facilities(session, list(ids)):
        freed += await beds.expire_holds_at(session, facility)
        await waitlist.offer_beds(session, actor=None, facility=facility)
    return freed


async def release_case(session: AsyncSession, *, actor: Actor | None, case_id: uuid.UUID) -> None:
    """End the case's placement or hold (the bed goes to the next person) and withdraw its
    waiting request: what a closing case gives back, each effect audited."""
    active = (
        await session.exec(
            select(Placement).where(
                Placement.case_id == case_id, col(Placement.status).in_(beds.ACTIVE)
            )
        )
    ).all()
    for placement in active:
        [facility] = await beds.lock_facilities(session, [placement.facility_id])
        await session.refresh(placement)
        if placement.status not in beds.ACTIVE:
            continue
        await beds.free_bed(
            session,
            actor=actor,
            placement=placement,
            facility=facility,
            reason=rules.EndReason.case_closed,
        )
        await waitlist.offer_beds(session, actor=actor, facility=facility)
    await waitlist.withdraw_waiting_of_case(
        session, actor=actor, case_id=case_id, reason=rules.WithdrawReason.case_closed
    )


async def placements_public(
    session: AsyncSession, placements: Sequence[Placement], *, known: Sequence[Facility] = ()
) -> list[PlacementPublic]:
    """Placements as the API shows them (at most one query, for the facilities' codes not
    `known` already)."""
    codes = {f.id: f.code for f in known}
    missing = {p.facility_id for p in placements} - set(codes)
    if missing:
        rows = await session.exec(
            select(Facility.id, Facility.code).where(col(Facility.id).in_(missing))
        )
        codes.update(rows.all())
    return [
        PlacementPublic(
            id=p.id,
            case_id=p.case_id,
            facility_id=p.facility_id,
            facility_code=codes[p.facility_id],
            status=rules.PlacementStatus(p.status),
            started_at=p.started_at,
            hold_expires_at=p.hold_expires_at,
            placed_at=p.placed_at,
            ended_at=p.ended_at,
            end_reason=rules.EndReason(p.end_reason) if p.end_reason else None,
        )
        for p in placements
    ]


async def get_decision(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> AllocationDecision:
    placement = await get_visible_placement(session, actor=actor, placement_id=placement_id)
    decision = await session.get(AllocationDecision, placement.decision_id)
    assert decision is not None
    return decision


async def case_placements(session: AsyncSession, case_id: uuid.UUID) -> list[PlacementPublic]:
    """Every placement of a case, newest first (two queries)."""
    rows = (
        await session.exec(
            select(Placement)
            .where(Placement.case_id == case_id)
            .order_by(col(Placement.started_at).desc())
        )
    ).all()
    return await placements_public(session, rows)
