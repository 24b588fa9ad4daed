"""The interviews of the victim: the law requires a single one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.cases import service as case_service
from service.core.crypto import Keyring
from service.core.errors import InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.legal import rules
from service.legal.models import Interview
from service.legal.schemas import InterviewCreate, InterviewPublic
from service.persons import service as person_service

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def interview_public(
    session: AsyncSession, interviews: Sequence[Interview]
) -> list[InterviewPublic]:
    codes = await identity_service.organization_codes(
        session, [i.organization_id for i in interviews]
    )
    return [
        InterviewPublic(
            id=i.id,
            case_id=i.case_id,
            conducted_at=i.conducted_at,
            organization=codes[i.organization_id],
            purpose=rules.InterviewPurpose(i.purpose),
            gesell_chamber=i.gesell_chamber,
            repeated=i.repeated,
            has_justification=i.justification_ciphertext is not None,
        )
        for i in interviews
    ]


async def record_interview(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, case: CaseFile, data: InterviewCreate
) -> Interview:
    """An interview of the victim by the actor's organization. The law requires a single
    interview: a later one needs a justification (sealed under the person's data key) and
    opens a repeated_interview alert to every organization involved in the case."""
    refuse_implausible(rules.interview_problem(data.conducted_at, now=utcnow()))
    # Lock the case so that two interviews recorded at once cannot both be the first.
    await case_service.lock_case(session, case.id)
    earlier = (
        await session.exec(
            select(sa.func.count()).select_from(Interview).where(Interview.case_id == case.id)
        )
    ).one()
    repeated = rules.interview_is_repeated(earlier)
    if repeated and data.justification is None:
        raise InvalidInput(
            "justification",
            "the case already has an interview: a second one needs a justification",
            type="missing",
        )
    sealed = None
    if data.justification is not None:
        sealed = await person_service.seal_for_person(
            session,
            keyring=keyring,
            person_id=case.person_id,
            payload={"justification": data.justification},
        )
    interview = Interview(
        case_id=case.id,
        conducted_at=data.conducted_at,
        organization_id=actor.organization_id,
        recorded_by=actor.user_id,
        purpose=data.purpose.value,
        gesell_chamber=data.gesell_chamber,
        repeated=repeated,
        justification_ciphertext=sealed,
    )
    session.add(interview)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="interview.recorded",
        entity_type="case",
        entity_id=case.id,
        changes={
            "interview_id": {"to": str(interview.id)},
            "conducted_at": {"to": interview.conducted_at},
            "purpose": {"to": interview.purpose},
            "gesell_chamber": {"to": interview.gesell_chamber},
            "repeated": {"to": repeated},
            **({"justification": {"changed": True}} if sealed is not None else {}),
        },
    )
    if repeated:
        await alert_service.open_alert(
            session,
            actor=actor,
            case_id=case.id,
            kind=AlertKind.repeated_interview,
            source_id=interview.id,
        )
    return interview


async def list_interviews(session: AsyncSession, case: CaseFile) -> list[Interview]:
    rows = await session.exec(
        select(Interview)
        .where(Interview.case_id == case.id)
        .order_by(col(Interview.conducted_at), col(Interview.id))
    )
    return list(rows.all())
