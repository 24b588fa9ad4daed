"""/v1/cases: identification of suspected victims and the case that follows them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, status

from service.cases import service
from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.cases.rules import CaseStatus, ExploitationForm
from service.cases.schemas import (
    CaseCreate,
    CaseFilters,
    CasePublic,
    CaseSummary,
    CaseUpdate,
    IdentificationCreate,
    RegionCode,
)
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.post(
    "",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_case(body: CaseCreate, actor: CaseWriterDep, session: SessionDep) -> CasePublic:
    """Open a case with its first identification by the caller's organization."""
    case = await service.create_case(session, actor=actor, data=body)
    return await service.case_public(session, case)


@router.get("", response_model=Page[CaseSummary], responses=problem_responses(401, 403, 422))
async def list_cases(
    actor: CaseReaderDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: CaseStatus | None = None,
    region: RegionCode | None = None,
    identified_from: date | None = None,
    identified_to: date | None = None,
    exploitation: ExploitationForm | None = None,
) -> Page[CaseSummary]:
    """Cases the caller's organization is involved in, newest first."""
    filters = CaseFilters(
        status=status,
        region=region,
        identified_from=identified_from,
        identified_to=identified_to,
        exploitation=exploitation,
    )
    items, next_cursor = await service.list_cases(session, actor=actor, filters=filters, page=page)
    return Page[CaseSummary](items=items, next_cursor=next_cursor)


@router.get("/{case_id}", response_model=CasePublic, responses=problem_responses(401, 403, 404))
async def read_case(case: CaseDep, session: SessionDep) -> CasePublic:
    """One case, without identifying data of the person."""
    return await service.case_public(session, case)


@router.patch(
    "/{case_id}", response_model=CasePublic, responses=problem_responses(401, 403, 404, 409, 422)
)
async def correct_case(
    body: CaseUpdate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> CasePublic:
    """Correct the caller's identification details or where the person is now."""
    await service.correct_case(session, actor=actor, case=case, data=body)
    return await service.case_public(session, case)


@router.post(
    "/{case_id}/identifications",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def add_identification(
    body: IdentificationCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> CasePublic:
    """Another identification of the same person, by the caller's organization."""
    await service.add_identification(session, actor=actor, case=case, data=body)
    return await service.case_public(session, case)
