"""The floor of the capacity domain: reading facilities as the rules see them, locking them,
and taking or freeing a bed so that a facility is never overbooked.

How overbooking is made impossible: whatever chose the bed, the bed is taken last, by one
conditional statement (`UPDATE facility SET in_use = in_use + 1 WHERE in_use < capacity
AND status = 'open'`), which either takes a free bed or takes none. The row stays locked
only from that statement to the commit. Freeing a bed is an atomic decrement. The check
constraint `in_use <= capacity` is the last guard: a bug that skipped the condition would
fail, not overbook. A case holds at most one bed: a partial unique index on `placement`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.capacity import rules
from service.capacity.models import AllocationDecision, Facility, Placement
from service.cases import service as case_service
from service.cases.rules import InvolvementBasis, TransitionTrigger
from service.core.db import for_update, table_of
from service.core.security import Actor
from service.core.time import today, utcnow
from service.repatriation import service as repatriation_service

if TYPE_CHECKING:
    from service.cases.models import CaseFile

ACTIVE = (rules.PlacementStatus.held.value, rules.PlacementStatus.placed.value)


def view(f: Facility) -> rules.FacilityView:
    """The facility as the pure rules see it."""
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


def needs_json(needs: rules.Needs) -> dict[str, Any]:
    data = asdict(needs)
    data["exploitation"] = sorted(needs.exploitation)
    data["minor"] = needs.minor
    return data


def needs_from_json(data: dict[str, Any]) -> rules.Needs:
    return rules.Needs(
        age=data["age"],
        gender=data["gender"],
        exploitation=frozenset(data["exploitation"]),
        region=data["region"],
        lgbti_specialized=data["lgbti_specialized"],
        nationality=data.get("nationality"),
    )


async def needs_of(
    session: AsyncSession, case: CaseFile, *, lgbti_specialized: bool, on: date | None = None
) -> rules.Needs:
    """What a bed must fit for this case, with the person's age on the day of placement."""
    profile = await case_service.placement_profile(
        session,
        case,
        on=on or today(),
        repatriation_region=await repatriation_service.arrival_region(session, case.id),
    )
    return rules.Needs(
        age=profile.age,
        gender=profile.gender,
        exploitation=profile.exploitation,
        region=profile.region,
        lgbti_specialized=lgbti_specialized,
        nationality=profile.nationality,
    )


async def lock_facilities(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Facility]:
    """Lock facility rows in id order (so two transactions never wait on each other)."""
    stmt = select(Facility).where(col(Facility.id).in_(ids)).order_by(col(Facility.id))
    return list((await session.exec(for_update(stmt, session))).all())


async def adjust_in_use(session: AsyncSession, facility: Facility, delta: int) -> None:
    """Change the beds in use atomically in SQL: an increment can never be lost, and the
    `never_overbooked` check refuses one that would exceed capacity."""
    table = table_of(Facility)
    new = (
        await session.exec(
            sa.update(table)
            .where(table.c.id == facility.id)
            .values(in_use=table.c.in_use + delta, row_version=table.c.row_version + 1)
            .returning(table.c.in_use, table.c.row_version)
        )
    ).one()
    _set_occupancy(facility, in_use=new.in_use, row_version=new.row_version)


def _set_occupancy(facility: Facility, *, in_use: int, row_version: int) -> None:
    """What the UPDATE wrote, as the loaded row's committed state. The beds in use are part
    of the facility as read, so its version (its ETag) moves with them; the ORM's own next
    UPDATE of the row then names the version the database has."""
    set_committed_value(facility, "in_use", in_use)
    set_committed_value(facility, "row_version", row_version)


class BedTaken(Exception):
    """The bed chosen without a lock was taken meanwhile."""


async def take_bed(session: AsyncSession, facility: Facility) -> None:
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
            .values(in_use=table.c.in_use + 1, row_version=table.c.row_version + 1)
            .returning(table.c.in_use, table.c.row_version)
        )
    ).first()
    if taken is None:
        raise BedTaken(facility.code)
    _set_occupancy(facility, in_use=taken.in_use, row_version=taken.row_version)


async def expire_holds_at(session: AsyncSession, facility: Facility) -> int:
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
        await adjust_in_use(session, facility, -len(stale))
    return len(stale)


def decision_for(
    case_id: uuid.UUID, needs: rules.Needs, choice: rules.Choice, *, reason: str | None = None
) -> AllocationDecision:
    """The stored record of one run of the placement rules."""
    return AllocationDecision(
        case_id=case_id,
        rule_version=rules.RULE_VERSION,
        inputs=needs_json(needs),
        considered={
            "ineligible": {k: v for k, v in choice.considered.items() if v},
            "eligible_in_order": list(choice.eligible),
        },
        outcome=choice.outcome.value,
        facility_id=choice.facility_id,
        reason=reason or choice.why,
    )


async def on_placed(session: AsyncSession, *, actor: Actor | None, case_id: uuid.UUID) -> None:
    """A person is in a bed: care has begun and a child is out of custody's alert."""
    await case_service.advance_case(
        session, actor=actor, case_id=case_id, trigger=TransitionTrigger.care_started
    )
    await alert_service.resolve_case_alerts(
        session, actor=actor, case_id=case_id, kind=AlertKind.minor_in_custody
    )


async def occupy(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    facility: Facility,
    decision: AllocationDecision,
    hold_hours: int | None,
) -> Placement:
    """Record the placement and everything it implies, then take the bed (last)."""
    now = utcnow()
    placement = Placement(
        case_id=case_id,
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
        case_id=case_id,
        organization_id=facility.organization_id,
        basis=InvolvementBasis.placement,
        source_id=placement.id,
    )
    record_event(
        session,
        actor=actor,
        action="placement.held" if hold_hours else "placement.placed",
        entity_type="case",
        entity_id=case_id,
        changes={
            "placement_id": {"to": str(placement.id)},
            "facility": {"to": facility.code},
            "decision_id": {"to": str(decision.id)},
        },
    )
    if not hold_hours:
        await on_placed(session, actor=actor, case_id=case_id)
    await session.flush()
    await take_bed(session, facility)
    return placement


async def free_bed(
    session: AsyncSession,
    *,
    actor: Actor | None,
    placement: Placement,
    facility: Facility,
    reason: rules.EndReason,
) -> None:
    """End an active placement or hold of a locked facility: the bed is free again (the
    caller offers it to the waitlist)."""
    placement.status, placement.ended_at, placement.end_reason = (
        rules.PlacementStatus.ended.value,
        utcnow(),
        reason.value,
    )
    session.add(placement)
    await session.flush()
    await adjust_in_use(session, facility, -1)
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


async def person_has_bed(session: AsyncSession, case: CaseFile) -> bool:
    """Whether the person of this case (through any of their cases) is placed or held now."""
    case_ids = case_service.case_ids_of_same_person(case)
    row = (
        await session.exec(
            select(Placement.id).where(
                col(Placement.case_id).in_(case_ids), col(Placement.status).in_(ACTIVE)
            )
        )
    ).first()
    return row is not None
