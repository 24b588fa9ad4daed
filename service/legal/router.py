"""Public defenders and interviews of a case; criminal proceedings and restitution."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response, status

from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.pagination import Page, PageParams, page_params
from service.core.preconditions import IfMatchDep, set_etag, versioned_read, versioned_write
from service.identity.dependencies import ActorDep, AuthenticatedRoute, SecurityDep
from service.legal import service
from service.legal.schemas import (
    DefendantCreate,
    DefendantPublic,
    InterviewCreate,
    InterviewPublic,
    LegalAidCreate,
    LegalAidEnd,
    LegalAidPublic,
    OutcomeCreate,
    PaymentCreate,
    ProceedingCaseCreate,
    ProceedingCreate,
    ProceedingPublic,
    ProsecutorOfficePublic,
    RestitutionOrderCreate,
    RestitutionOrderPublic,
    StatusChange,
)
from service.reference import service as reference_service

router = Router(prefix="/v1", tags=["legal"], route_class=AuthenticatedRoute)


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
    responses=problem_responses(401, 403, 404, 410, 422),
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


@router.post(
    "/proceedings",
    response_model=ProceedingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
    openapi_extra=versioned_read("201"),
)
async def create_proceeding(
    body: ProceedingCreate, actor: CaseWriterDep, session: SessionDep, response: Response
) -> ProceedingPublic:
    """Open a criminal proceeding (a prosecutor organization only, 403 otherwise) at a
    specialized prosecutor office, with the victims' cases it concerns, each with the day of
    the offence. The caller's organization is its prosecutor and stays involved in those
    cases through it. 409 when the office already has this complaint number."""
    proceeding = await service.create_proceeding(session, actor=actor, data=body)
    set_etag(response, proceeding)
    return (await service.proceeding_public(session, actor=actor, proceedings=[proceeding]))[0]


@router.get(
    "/proceedings",
    response_model=Page[ProceedingPublic],
    responses=problem_responses(401, 403, 422),
)
async def list_proceedings(
    actor: CaseReaderDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ProceedingPublic]:
    """The proceedings the caller's organization may read (as their prosecutor or court, or
    through a linked case it sees), newest first."""
    rows, next_cursor = await service.list_proceedings(session, actor=actor, page=page)
    items = await service.proceeding_public(session, actor=actor, proceedings=rows)
    return Page[ProceedingPublic](items=items, next_cursor=next_cursor)


@router.get(
    "/proceedings/{proceeding_id}",
    response_model=ProceedingPublic,
    responses=problem_responses(401, 403, 404),
    openapi_extra=versioned_read(),
)
async def get_proceeding(
    proceeding_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep, response: Response
) -> ProceedingPublic:
    """A proceeding with its status history and defendants; of its victims' cases, only
    those the caller's organization sees are listed (case_count counts them all). Its ETag
    moves with its status, its cases and its defendants' outcomes."""
    proceeding = await service.get_proceeding_for(session, actor=actor, proceeding_id=proceeding_id)
    set_etag(response, proceeding)
    return (await service.proceeding_public(session, actor=actor, proceedings=[proceeding]))[0]


@router.post(
    "/proceedings/{proceeding_id}/cases",
    response_model=ProceedingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def add_proceeding_case(
    proceeding_id: uuid.UUID,
    body: ProceedingCaseCreate,
    actor: CaseWriterDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> ProceedingPublic:
    """Add a victim's case (one the caller sees) to an undecided proceeding: the
    prosecutor's step. The prosecutor and the court, once named, become involved in it."""
    proceeding = await service.add_case(
        session, actor=actor, proceeding_id=proceeding_id, data=body, if_match=if_match
    )
    set_etag(response, proceeding)
    return (await service.proceeding_public(session, actor=actor, proceedings=[proceeding]))[0]


@router.post(
    "/proceedings/{proceeding_id}/defendants",
    response_model=DefendantPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def add_defendant(
    proceeding_id: uuid.UUID,
    body: DefendantCreate,
    actor: CaseWriterDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> DefendantPublic:
    """Add a defendant, without identity: labelled D1, D2 ... in order; the prosecutor's
    step, until the proceeding is decided. If-Match is the proceeding's ETag; the ETag
    returned is the new defendant's."""
    defendant = await service.add_defendant(
        session, actor=actor, proceeding_id=proceeding_id, data=body, if_match=if_match
    )
    set_etag(response, defendant)
    return service.defendant_public(defendant)


@router.post(
    "/proceedings/{proceeding_id}/status",
    response_model=ProceedingPublic,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    openapi_extra=versioned_write(),
)
async def change_proceeding_status(
    proceeding_id: uuid.UUID,
    body: StatusChange,
    actor: CaseWriterDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> ProceedingPublic:
    """Move the proceeding forward from a day on (409 backwards). The prosecutor moves it up
    to trial, naming the court (an organization of kind judiciary); the court moves it to
    decided once every defendant has an outcome."""
    proceeding = await service.change_status(
        session, actor=actor, proceeding_id=proceeding_id, data=body, if_match=if_match
    )
    set_etag(response, proceeding)
    return (await service.proceeding_public(session, actor=actor, proceedings=[proceeding]))[0]


@router.post(
    "/defendants/{defendant_id}/outcome",
    response_model=DefendantPublic,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    openapi_extra=versioned_write(),
)
async def record_outcome(
    defendant_id: uuid.UUID,
    body: OutcomeCreate,
    actor: CaseWriterDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> DefendantPublic:
    """Record a defendant's outcome: the court at trial (a conviction with its sentence and
    any fine), or the prosecutor before trial (dismissed or suspended). A conviction is
    flagged below_legal_minimum or charge_reduced by the sentencing rule, with its version."""
    defendant = await service.record_outcome(
        session, actor=actor, defendant_id=defendant_id, data=body, if_match=if_match
    )
    set_etag(response, defendant)
    return service.defendant_public(defendant)


@router.get(
    "/defendants/{defendant_id}",
    response_model=DefendantPublic,
    responses=problem_responses(401, 403, 404),
    openapi_extra=versioned_read(),
)
async def read_defendant(
    defendant_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep, response: Response
) -> DefendantPublic:
    """One defendant of a proceeding the caller's organization may read, with its ETag."""
    defendant, _ = await service.get_defendant_for(session, actor=actor, defendant_id=defendant_id)
    set_etag(response, defendant)
    return service.defendant_public(defendant)


@router.get(
    "/cases/{case_id}/proceedings",
    response_model=list[ProceedingPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_case_proceedings(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> list[ProceedingPublic]:
    """The proceedings the case is in, oldest complaint first."""
    proceedings = await service.list_case_proceedings(session, case.id)
    return await service.proceeding_public(session, actor=actor, proceedings=proceedings)


@router.post(
    "/proceedings/{proceeding_id}/restitution-orders",
    response_model=RestitutionOrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def order_restitution(
    proceeding_id: uuid.UUID,
    body: RestitutionOrderCreate,
    actor: CaseWriterDep,
    session: SessionDep,
) -> RestitutionOrderPublic:
    """The court orders restitution to a victim whose case is in the proceeding (at trial or
    once decided)."""
    order = await service.order_restitution(
        session, actor=actor, proceeding_id=proceeding_id, data=body
    )
    return (await service.restitution_public(session, [order]))[0]


@router.post(
    "/restitution-orders/{order_id}/payments",
    response_model=RestitutionOrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_restitution_payment(
    order_id: uuid.UUID, body: PaymentCreate, actor: CaseWriterDep, session: SessionDep
) -> RestitutionOrderPublic:
    """A payment received, recorded by an organization that may write the victim's case;
    409 payment_exceeds_balance above the outstanding balance. Answers the order with its
    new balance."""
    order = await service.record_payment(session, actor=actor, order_id=order_id, data=body)
    return (await service.restitution_public(session, [order]))[0]


@router.get(
    "/cases/{case_id}/restitution",
    response_model=list[RestitutionOrderPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_case_restitution(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> list[RestitutionOrderPublic]:
    """The restitution ordered to the case's victim, each order with its payments, the paid
    total and the outstanding balance."""
    return await service.restitution_public(
        session, await service.list_case_orders(session, case.id)
    )


@router.get(
    "/prosecutor-offices",
    response_model=list[ProsecutorOfficePublic],
    responses=problem_responses(401),
)
async def list_prosecutor_offices(
    actor: ActorDep, session: SessionDep
) -> list[ProsecutorOfficePublic]:
    """The specialized prosecutor offices a proceeding may be filed at (reference data)."""
    return [
        ProsecutorOfficePublic.model_validate(office, from_attributes=True)
        for office in await reference_service.list_prosecutor_offices(session)
    ]
