"""Assistance, custody periods and non-punishment records of a case."""

from __future__ import annotations

import uuid

from fastapi import status

from service.cases.dependencies import CaseDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.identity.dependencies import AuthenticatedRoute
from service.protection import service
from service.protection.schemas import (
    AssistanceCreate,
    AssistancePublic,
    CustodyCreate,
    CustodyEnd,
    CustodyPublic,
    NonPunishmentCreate,
    NonPunishmentPublic,
)

router = Router(prefix="/v1", tags=["protection"], route_class=AuthenticatedRoute)

_WRITE = problem_responses(401, 403, 404, 422)


@router.post(
    "/cases/{case_id}/assistance",
    response_model=AssistancePublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE,
)
async def record_assistance(
    body: AssistanceCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> AssistancePublic:
    """A protection service given by the caller's organization."""
    assistance = await service.record_assistance(session, actor=actor, case=case, data=body)
    return AssistancePublic(
        id=assistance.id,
        case_id=assistance.case_id,
        kind=body.kind,
        organization=actor.organization_code,
        provided_on=assistance.provided_on,
        outcome=body.outcome,
    )


@router.post(
    "/cases/{case_id}/custody-periods",
    response_model=CustodyPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE,
)
async def record_custody(
    body: CustodyCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> CustodyPublic:
    """Where the person is held; a child in a police station opens an alert at once."""
    return service.custody_public(
        await service.record_custody(session, actor=actor, case=case, data=body)
    )


@router.get(
    "/cases/{case_id}/custody-periods",
    response_model=list[CustodyPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_custody(case: CaseDep, session: SessionDep) -> list[CustodyPublic]:
    """Every custody period of the case, with its length in hours."""
    return [service.custody_public(p) for p in await service.list_custody(session, case)]


@router.post(
    "/custody-periods/{custody_id}/end",
    response_model=CustodyPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def end_custody(
    custody_id: uuid.UUID, body: CustodyEnd, actor: CaseWriterDep, session: SessionDep
) -> CustodyPublic:
    """The person left custody; the alert it raised is resolved."""
    period = await service.end_custody(session, actor=actor, custody_id=custody_id, end=body.end)
    return service.custody_public(period)


@router.post(
    "/cases/{case_id}/non-punishment-records",
    response_model=NonPunishmentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE,
)
async def record_non_punishment(
    body: NonPunishmentCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> NonPunishmentPublic:
    """An arrest, charge or other measure against the victim for compelled acts."""
    record = await service.record_non_punishment(session, actor=actor, case=case, data=body)
    return NonPunishmentPublic.model_validate(record, from_attributes=True)
