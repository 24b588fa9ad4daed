"""Public defenders and interviews of a case."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.identity.dependencies import SecurityDep
from service.legal import service
from service.legal.schemas import (
    InterviewCreate,
    InterviewPublic,
    LegalAidCreate,
    LegalAidEnd,
    LegalAidPublic,
)

router = APIRouter(prefix="/v1", tags=["legal"])


@router.post(
    "/cases/{case_id}/legal-aid",
    response_model=LegalAidPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def assign_defender(
    body: LegalAidCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> LegalAidPublic:
    """Assign a public defender (a user of role legal_aid); their organization becomes
    involved in the case while the assignment lasts. 409 while another is active."""
    assignment = await service.assign_defender(session, actor=actor, case=case, data=body)
    return (await service.legal_aid_public(session, [assignment]))[0]


@router.get(
    "/cases/{case_id}/legal-aid",
    response_model=list[LegalAidPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_legal_aid(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> list[LegalAidPublic]:
    """The case's public defenders, oldest first: the active one and those that ended."""
    return await service.legal_aid_public(session, await service.list_assignments(session, case))


@router.post(
    "/legal-aid/{assignment_id}/end",
    response_model=LegalAidPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def end_legal_aid(
    assignment_id: uuid.UUID, body: LegalAidEnd, actor: CaseWriterDep, session: SessionDep
) -> LegalAidPublic:
    """End the assignment with a reason; the defender's organization stops being involved
    through it."""
    assignment = await service.end_assignment(
        session, actor=actor, assignment_id=assignment_id, reason=body.reason
    )
    return (await service.legal_aid_public(session, [assignment]))[0]


@router.post(
    "/cases/{case_id}/interviews",
    response_model=InterviewPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def record_interview(
    body: InterviewCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
) -> InterviewPublic:
    """An interview conducted by the caller's organization. After the first, a
    `justification` is required (422 without it); the interview is recorded as repeated and
    opens a repeated_interview alert. The justification is stored encrypted, never shown."""
    interview = await service.record_interview(
        session, actor=actor, keyring=security.keyring, case=case, data=body
    )
    return (await service.interview_public(session, [interview]))[0]


@router.get(
    "/cases/{case_id}/interviews",
    response_model=list[InterviewPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_interviews(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> list[InterviewPublic]:
    """The case's interviews, in the order they took place."""
    return await service.interview_public(session, await service.list_interviews(session, case))
