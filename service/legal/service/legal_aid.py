"""Assigning public defenders to cases, and the missing-defender alert."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.cases import service as case_service
from service.cases.rules import InvolvementBasis
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.legal import rules
from service.legal.exceptions import (
    LegalAidAlreadyAssigned,
    LegalAidAlreadyEnded,
    LegalAidNotFound,
    NotADefender,
)
from service.legal.models import LegalAidAssignment
from service.legal.schemas import LegalAidCreate, LegalAidPublic

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def legal_aid_public(
    session: AsyncSession, assignments: Sequence[LegalAidAssignment]
) -> list[LegalAidPublic]:
    codes = await identity_service.organization_codes(
        session, [a.organization_id for a in assignments]
    )
    return [
        LegalAidPublic(
            id=a.id,
            case_id=a.case_id,
            defender_id=a.defender_id,
            organization=codes[a.organization_id],
            started_at=a.started_at,
            ended_at=a.ended_at,
            end_reason=rules.LegalAidEndReason(a.end_reason) if a.end_reason else None,
            active=a.ended_at is None,
        )
        for a in assignments
    ]


async def _active_assignment(
    session: AsyncSession, case_id: uuid.UUID
) -> LegalAidAssignment | None:
    return (
        await session.exec(
            select(LegalAidAssignment).where(
                LegalAidAssignment.case_id == case_id,
                col(LegalAidAssignment.ended_at).is_(None),
            )
        )
    ).first()


async def assign_defender(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: LegalAidCreate
) -> LegalAidAssignment:
    """Assign a public defender to the case; the defender's organization becomes involved
    while the assignment lasts, and a missing-defender alert is resolved."""
    defender = await identity_service.get_user(session, data.defender_id)
    if defender is None or not rules.can_defend(role=defender.role, is_active=defender.is_active):
        raise NotADefender(
            f"User {data.defender_id} is not an active public defender (role legal_aid).",
        )
    if await _active_assignment(session, case.id) is not None:
        raise LegalAidAlreadyAssigned(
            "The case already has an active public defender: end that assignment first."
        )
    assignment = LegalAidAssignment(
        case_id=case.id,
        defender_id=defender.id,
        organization_id=defender.organization_id,
        assigned_by=actor.user_id,
    )
    # The partial unique index decides between two assignments arriving at once.
    savepoint = await session.begin_nested()
    try:
        session.add(assignment)
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        raise LegalAidAlreadyAssigned(
            "The case already has an active public defender: end that assignment first."
        ) from None
    await savepoint.commit()
    record_event(
        session,
        actor=actor,
        action="legal_aid.assigned",
        entity_type="case",
        entity_id=case.id,
        changes={
            "assignment_id": {"to": str(assignment.id)},
            "defender_id": {"to": str(defender.id)},
            "organization_id": {"to": str(defender.organization_id)},
        },
    )
    await case_service.involve(
        session,
        actor=actor,
        case_id=case.id,
        organization_id=defender.organization_id,
        basis=InvolvementBasis.legal_aid,
        source_id=assignment.id,
    )
    await alert_service.resolve_case_alerts(
        session, actor=actor, case_id=case.id, kind=AlertKind.no_defender
    )
    return assignment


async def end_assignment(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: uuid.UUID,
    reason: rules.LegalAidEndReason,
) -> LegalAidAssignment:
    """End a defender's assignment; their organization's involvement of this basis ends."""
    not_found = LegalAidNotFound(
        f"No legal aid assignment {assignment_id} is visible to your organization."
    )
    assignment = await session.get(LegalAidAssignment, assignment_id)
    if assignment is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=assignment.case_id, otherwise=not_found
    )
    if assignment.ended_at is not None:
        raise LegalAidAlreadyEnded("This legal aid assignment has already ended.")
    assignment.ended_at = utcnow()
    assignment.end_reason = reason.value
    assignment.ended_by = actor.user_id
    session.add(assignment)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="legal_aid.ended",
        entity_type="case",
        entity_id=assignment.case_id,
        changes={
            "assignment_id": {"to": str(assignment.id)},
            "end_reason": {"to": reason.value},
        },
    )
    await case_service.end_involvement(
        session,
        actor=actor,
        case_id=assignment.case_id,
        organization_id=assignment.organization_id,
        basis=InvolvementBasis.legal_aid,
        source_id=assignment.id,
    )
    return assignment


async def list_assignments(session: AsyncSession, case: CaseFile) -> list[LegalAidAssignment]:
    """The case's defenders, oldest first (the dated history)."""
    rows = await session.exec(
        select(LegalAidAssignment)
        .where(LegalAidAssignment.case_id == case.id)
        .order_by(col(LegalAidAssignment.started_at), col(LegalAidAssignment.id))
    )
    return list(rows.all())


async def alert_cases_without_defender(
    session: AsyncSession, *, now: datetime, days: int, limit: int = 200
) -> int:
    """Open a no_defender alert on up to `limit` cases in care for `days` or more without an
    active defender, longest in care first. The alert's source is the transition that put
    the case in care, so each stay in care alerts once: running it again opens nothing new,
    and an alert resolved by hand is not reopened. Returns how many alerts it opened (the
    sweep repeats while it is `limit`)."""
    care = case_service.in_care_since(rules.alert_cutoff(now=now, days=days)).subquery()
    stmt = (
        select(care.c.case_id, care.c.transition_id)
        .where(
            ~sa.exists().where(
                col(LegalAidAssignment.case_id) == care.c.case_id,
                col(LegalAidAssignment.ended_at).is_(None),
            ),
            care.c.transition_id.not_in(alert_service.alert_sources(AlertKind.no_defender)),
        )
        .order_by(care.c.at, care.c.case_id)
        .limit(limit)
    )
    candidates = (await session.exec(stmt)).all()
    opened = 0
    for case_id, transition_id in candidates:
        # Lock the case (skipping one another worker holds), then look again: a defender
        # may have been assigned since the candidates were read.
        if await case_service.lock_case(session, case_id, skip_locked=True) is None:
            continue
        if await _active_assignment(session, case_id) is not None:
            continue
        await alert_service.open_alert(
            session,
            actor=None,
            case_id=case_id,
            kind=AlertKind.no_defender,
            source_id=transition_id,
        )
        opened += 1
    await session.flush()
    return opened
