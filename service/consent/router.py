"""/v1/cases/{case_id}/consents and /v1/consents/{id}/revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from service.cases.dependencies import CaseDep, CaseWriterDep
from service.consent import service
from service.consent.schemas import ConsentCreate, ConsentPublic
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.pathway import consent as consent_flow

router = APIRouter(prefix="/v1", tags=["consent"])


@router.post(
    "/cases/{case_id}/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def record_consent(
    body: ConsentCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> ConsentPublic:
    """Record a new version of the person's informed consent, or her refusal (which cancels
    the pending referrals nothing covers any more)."""
    consent = await consent_flow.record_consent(session, actor=actor, case_id=case.id, data=body)
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


@router.post(
    "/consents/{consent_id}/revoke",
    response_model=ConsentPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def revoke_consent(
    consent_id: uuid.UUID, actor: CaseWriterDep, session: SessionDep
) -> ConsentPublic:
    """Withdraw a consent; pending referrals it alone covered are cancelled."""
    consent = await consent_flow.revoke_consent(session, actor=actor, consent_id=consent_id)
    return ConsentPublic.model_validate(consent, from_attributes=True)
