"""The case's state machine in use: requested and automatic transitions, and screening (its
notes sealed under the person's data key, read back by the screening organization only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases import rules
from service.cases.exceptions import (
    IllegalCaseTransition,
)
from service.cases.models import (
    CaseFile,
    CaseTransition,
    Screening,
)
from service.cases.rules import CaseStatus, VictimStatus
from service.cases.schemas import (
    ScreeningCreate,
    ScreeningRead,
    TransitionRequest,
)
from service.cases.service.access import lock_case_for_change
from service.core.crypto import Keyring
from service.core.db import table_of
from service.core.preconditions import IfMatch
from service.core.security import Actor
from service.core.time import utcnow
from service.identity.service import get_organizations
from service.persons import service as person_service


async def _record_transition(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case: CaseFile,
    to: CaseStatus,
    reason: str | None,
    trigger: rules.TransitionTrigger,
    note: bytes | None = None,
) -> CaseTransition:
    transition = CaseTransition(
        case_id=case.id,
        from_status=case.status,
        to_status=to.value,
        reason=reason,
        trigger=trigger.value,
        note_ciphertext=note,
        actor_user_id=actor.user_id if actor else None,
        organization_id=actor.organization_id if actor else None,
    )
    session.add(transition)
    record_event(
        session,
        actor=actor,
        action="case.transitioned",
        entity_type="case",
        entity_id=case.id,
        changes={
            "status": {"from": case.status, "to": to.value},
            "reason": {"to": reason},
            "trigger": {"to": trigger.value},
            "note": {"changed": note is not None},
        },
    )
    case.status, case.updated_at = to.value, utcnow()
    session.add(case)
    await session.flush()
    return transition


async def transition_case(
    session: AsyncSession,
    *,
    actor: Actor,
    keyring: Keyring,
    case: CaseFile,
    request: TransitionRequest,
) -> CaseTransition:
    """Close or reopen a case, as the state machine allows; 409 lists what is allowed. The
    note, if any, is sealed under the person's data key."""
    try:
        rules.check_requested_transition(
            CaseStatus(case.status),
            request.to,
            request.reason,
            victim_status=VictimStatus(case.victim_status),
        )
    except rules.IllegalTransition as exc:
        raise IllegalCaseTransition(str(exc), allowed=exc.allowed) from exc
    note = None
    if request.note:
        note = await person_service.seal_for_person(
            session, keyring=keyring, person_id=case.person_id, payload={"note": request.note}
        )
    return await _record_transition(
        session,
        actor=actor,
        case=case,
        to=request.to,
        reason=request.reason,
        trigger=rules.TransitionTrigger.requested,
        note=note,
    )


async def advance_case(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    trigger: rules.TransitionTrigger,
) -> None:
    """Move a case because of a pathway event (a referral sent, care begun, the person
    repatriated to her country)."""
    case = await session.get(CaseFile, case_id)
    assert case is not None
    to = rules.status_after(CaseStatus(case.status), trigger)
    if to is not None:
        reason = rules.TRIGGER_REASONS.get(trigger)
        await _record_transition(
            session,
            actor=actor,
            case=case,
            to=to,
            reason=reason.value if reason else None,
            trigger=trigger,
        )


async def list_transitions(session: AsyncSession, case: CaseFile) -> Sequence[CaseTransition]:
    return (
        await session.exec(
            select(CaseTransition)
            .where(CaseTransition.case_id == case.id)
            .order_by(col(CaseTransition.at), col(CaseTransition.id))
        )
    ).all()


async def screen_case(
    session: AsyncSession,
    *,
    actor: Actor,
    keyring: Keyring,
    case: CaseFile,
    data: ScreeningCreate,
    if_match: IfMatch | None = None,
) -> Screening:
    """Decide victim status; the deciding organization is the actor's."""
    case = await lock_case_for_change(session, case, if_match=if_match)
    notes = None
    if data.notes:
        notes = await person_service.seal_for_person(
            session, keyring=keyring, person_id=case.person_id, payload={"notes": data.notes}
        )
    screening = Screening(
        case_id=case.id,
        victim_status=data.victim_status,
        organization_id=actor.organization_id,
        screened_by=actor.user_id,
        notes_ciphertext=notes,
    )
    session.add(screening)
    record_event(
        session,
        actor=actor,
        action="case.screened",
        entity_type="case",
        entity_id=case.id,
        changes={
            "victim_status": {"from": case.victim_status, "to": data.victim_status},
            "notes": {"changed": notes is not None},
        },
    )
    case.victim_status, case.updated_at = data.victim_status, utcnow()
    session.add(case)
    await session.flush()
    return screening


async def list_screenings(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, case: CaseFile
) -> list[ScreeningRead]:
    """The case's screenings, oldest first; notes decrypted only for those the actor's
    organization made, and each such read audited (without the notes)."""
    screenings = (
        await session.exec(
            select(Screening)
            .where(Screening.case_id == case.id)
            .order_by(col(Screening.screened_at), col(Screening.id))
        )
    ).all()
    orgs = await get_organizations(session, [s.organization_id for s in screenings])
    listed = []
    for screening in screenings:
        notes = None
        if (
            screening.notes_ciphertext is not None
            and screening.organization_id == actor.organization_id
        ):
            opened = await person_service.open_for_person(
                session,
                keyring=keyring,
                person_id=case.person_id,
                sealed=screening.notes_ciphertext,
            )
            if opened is not None:
                notes = str(opened["notes"])
                record_event(
                    session,
                    actor=actor,
                    action="screening.notes_viewed",
                    entity_type="screening",
                    entity_id=screening.id,
                    changes={"case_id": {"to": str(case.id)}},
                )
        listed.append(
            ScreeningRead(
                id=screening.id,
                case_id=case.id,
                victim_status=VictimStatus(screening.victim_status),
                organization=orgs[screening.organization_id].code,
                screened_at=screening.screened_at,
                has_notes=screening.notes_ciphertext is not None,
                notes=notes,
            )
        )
    return listed


def in_care_since(before: datetime) -> sa.Select[tuple[uuid.UUID, uuid.UUID, datetime]]:
    """Cases in care whose care began at or before `before`, as SQL: `case_id`, and the id
    (`transition_id`) and time (`at`) of the transition that last put the case in care."""
    cases, moves = table_of(CaseFile), table_of(CaseTransition)
    later = moves.alias("later")
    return (
        sa.select(
            cases.c.id.label("case_id"),
            moves.c.id.label("transition_id"),
            moves.c.at.label("at"),
        )
        .join(moves, moves.c.case_id == cases.c.id)
        .where(
            cases.c.status == CaseStatus.in_care.value,
            moves.c.to_status == CaseStatus.in_care.value,
            moves.c.at <= before,
            ~sa.exists().where(later.c.case_id == moves.c.case_id, later.c.at > moves.c.at),
        )
    )
