"""/v1/cases/{case_id}/consents, /v1/consents/{id}/revoke, and the statistics bases."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Response, status

from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.consent import service
from service.consent.schemas import (
    ConsentCreate,
    ConsentPublic,
    StatisticsBasisCreate,
    StatisticsBasisPublic,
)
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.preconditions import IfMatchDep, set_etag, versioned_read, versioned_write
from service.core.security import Actor
from service.identity.dependencies import AuthenticatedRoute, require
from service.identity.rules import Permission
from service.pathway import consent as consent_flow

if TYPE_CHECKING:
    from service.consent.models import StatisticsBasis

router = Router(prefix="/v1", tags=["consent"], route_class=AuthenticatedRoute)

# Counting a case without the person's consent is decided at the level of a consent override.
BasisRecorderDep = Annotated[Actor, Depends(require(Permission.consent_override))]


def _basis_public(record: StatisticsBasis) -> StatisticsBasisPublic:
    return StatisticsBasisPublic.model_validate(
        {**record.model_dump(), "active": record.withdrawn_at is None}
    )


@router.post(
    "/cases/{case_id}/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
    openapi_extra=versioned_read("201"),
)
async def record_consent(
    body: ConsentCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    response: Response,
) -> ConsentPublic:
    """Record a new version of the person's informed consent, or her refusal (which cancels
    the pending referrals nothing covers any more)."""
    consent = await consent_flow.record_consent(session, actor=actor, case_id=case.id, data=body)
    set_etag(response, consent)
    return ConsentPublic.model_validate(consent, from_attributes=True)


@router.get(
    "/cases/{case_id}/consents",
    response_model=list[ConsentPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_consents(case: CaseDep, session: SessionDep) -> list[ConsentPublic]:
    """Every version of the consent in this case, revoked ones included."""
    return [
        ConsentPublic.model_validate(c, from_attributes=True)
        for c in await service.list_consents(session, case.id)
    ]


@router.get(
    "/consents/{consent_id}",
    response_model=ConsentPublic,
    responses=problem_responses(401, 403, 404),
    openapi_extra=versioned_read(),
)
async def read_consent(
    consent_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep, response: Response
) -> ConsentPublic:
    """One consent of a case the caller's organization is involved in, with its ETag."""
    consent = await consent_flow.read_consent(session, actor=actor, consent_id=consent_id)
    set_etag(response, consent)
    return ConsentPublic.model_validate(consent, from_attributes=True)


@router.post(
    "/consents/{consent_id}/revoke",
    response_model=ConsentPublic,
    responses=problem_responses(401, 403, 404, 409, 412),
    openapi_extra=versioned_write(),
)
async def revoke_consent(
    consent_id: uuid.UUID,
    actor: CaseWriterDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> ConsentPublic:
    """Withdraw a consent; pending referrals it alone covered are cancelled."""
    consent = await consent_flow.revoke_consent(
        session, actor=actor, consent_id=consent_id, if_match=if_match
    )
    set_etag(response, consent)
    return ConsentPublic.model_validate(consent, from_attributes=True)


@router.post(
    "/cases/{case_id}/statistics-bases",
    response_model=StatisticsBasisPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_statistics_basis(
    body: StatisticsBasisCreate, case: CaseDep, actor: BasisRecorderDep, session: SessionDep
) -> StatisticsBasisPublic:
    """Record a legal basis, other than the person's consent, for counting the case in the
    anonymized statistics (users who may override consent; 409 while the same basis is
    active). Without consent to statistics or such a basis, a case is left out of every
    table, and the table says how many were."""
    record = await consent_flow.record_statistics_basis(
        session, actor=actor, case_id=case.id, basis=body.basis
    )
    return _basis_public(record)


@router.get(
    "/cases/{case_id}/statistics-bases",
    response_model=list[StatisticsBasisPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_statistics_bases(case: CaseDep, session: SessionDep) -> list[StatisticsBasisPublic]:
    """The case's statistics bases, withdrawn ones included."""
    return [_basis_public(r) for r in await service.list_statistics_bases(session, case.id)]


@router.post(
    "/statistics-bases/{basis_id}/withdraw",
    response_model=StatisticsBasisPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def withdraw_statistics_basis(
    basis_id: uuid.UUID, actor: BasisRecorderDep, session: SessionDep
) -> StatisticsBasisPublic:
    """Withdraw a statistics basis (dated; the case stops being counted from now on unless
    consent or another basis covers it)."""
    record = await consent_flow.withdraw_statistics_basis(session, actor=actor, basis_id=basis_id)
    return _basis_public(record)
