"""Asylum claims, residency and repatriations of a case; a repatriation by its id."""

from __future__ import annotations

import uuid

from fastapi import status

from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.identity.dependencies import AuthenticatedRoute
from service.pathway import repatriation as repatriation_flow
from service.repatriation import service
from service.repatriation.rules import CancelReason
from service.repatriation.schemas import (
    AsylumClaimCreate,
    AsylumClaimHistory,
    RepatriationArrival,
    RepatriationCancel,
    RepatriationCreate,
    RepatriationPublic,
    ResidencyCreate,
    ResidencyHistory,
)

router = Router(prefix="/v1", tags=["repatriation"], route_class=AuthenticatedRoute)


@router.post(
    "/cases/{case_id}/asylum-claim",
    response_model=AsylumClaimHistory,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_asylum_claim(
    body: AsylumClaimCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> AsylumClaimHistory:
    """A new status of the person's asylum claim as of `effective_on` (UNHCR or MIGRACIONES
    in practice; any organization involved in the case may record it). Only for a foreign
    national (409 `not_a_foreign_national`). A pending or recognized claim in force cancels a
    planned return to the country of origin (reason `asylum_claim`)."""
    await service.record_asylum_claim(session, actor=actor, case=case, data=body)
    return await service.asylum_claim_view(session, case.id)


@router.get(
    "/cases/{case_id}/asylum-claim",
    response_model=AsylumClaimHistory,
    responses=problem_responses(401, 403, 404),
)
async def get_asylum_claim(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> AsylumClaimHistory:
    """The claim's status in force and its dated history."""
    return await service.asylum_claim_view(session, case.id)


@router.post(
    "/cases/{case_id}/residency",
    response_model=ResidencyHistory,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_residency(
    body: ResidencyCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> ResidencyHistory:
    """A new status of the person's residency in Peru as of `effective_on` (MIGRACIONES in
    practice). Only for a foreign national (409 `not_a_foreign_national`)."""
    await service.record_residency(session, actor=actor, case=case, data=body)
    return await service.residency_view(session, case.id)


@router.get(
    "/cases/{case_id}/residency",
    response_model=ResidencyHistory,
    responses=problem_responses(401, 403, 404),
)
async def get_residency(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> ResidencyHistory:
    """The residency in force and its dated history."""
    return await service.residency_view(session, case.id)


@router.post(
    "/cases/{case_id}/repatriations",
    response_model=RepatriationPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def plan_repatriation(
    body: RepatriationCreate, case: CaseDep, actor: CaseWriterDep, session: SessionDep
) -> RepatriationPublic:
    """Plan a repatriation. `to_peru`: a Peruvian whose identification names a country
    abroad (409 `not_a_peruvian_exploited_abroad` otherwise), with the consulate, the
    receiving organization (it becomes involved in the case) and the arrival region (a bed
    is sought there). `to_country_of_origin`: a foreign national, with her consent in force
    naming `repatriation` (409 `consent_required`); 409 `non_refoulement` while her asylum
    claim is pending or recognized (the problem names it in `asylum_claim`). One planned
    repatriation per case (409 `repatriation_already_planned`)."""
    repatriation = await service.plan_repatriation(session, actor=actor, case=case, data=body)
    return (await service.repatriations_public(session, [repatriation]))[0]


@router.get(
    "/cases/{case_id}/repatriations",
    response_model=list[RepatriationPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_repatriations(
    case: CaseDep, actor: CaseReaderDep, session: SessionDep
) -> list[RepatriationPublic]:
    """The case's repatriations, oldest first."""
    return await service.repatriations_public(
        session, await service.list_repatriations(session, case.id)
    )


@router.get(
    "/repatriations/{repatriation_id}",
    response_model=RepatriationPublic,
    responses=problem_responses(401, 403, 404),
)
async def get_repatriation(
    repatriation_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep
) -> RepatriationPublic:
    """One repatriation, if its case is visible to the caller."""
    repatriation = await service.get_repatriation_for(
        session, actor=actor, repatriation_id=repatriation_id
    )
    return (await service.repatriations_public(session, [repatriation]))[0]


@router.post(
    "/repatriations/{repatriation_id}/arrival",
    response_model=RepatriationPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_arrival(
    repatriation_id: uuid.UUID,
    body: RepatriationArrival,
    actor: CaseWriterDep,
    session: SessionDep,
) -> RepatriationPublic:
    """The person arrived. To Peru: the case stays open and continues on the national
    pathway. To the country of origin: checked again (non-refoulement, consent), then the
    case closes as repatriated, freeing its bed and cancelling its pending referrals."""
    repatriation = await repatriation_flow.record_arrival(
        session, actor=actor, repatriation_id=repatriation_id, data=body
    )
    return (await service.repatriations_public(session, [repatriation]))[0]


@router.post(
    "/repatriations/{repatriation_id}/cancel",
    response_model=RepatriationPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def cancel_repatriation(
    repatriation_id: uuid.UUID,
    body: RepatriationCancel,
    actor: CaseWriterDep,
    session: SessionDep,
) -> RepatriationPublic:
    """A planned repatriation that will not happen; the receiving organization stops being
    involved through it."""
    repatriation = await service.get_repatriation_for(
        session, actor=actor, repatriation_id=repatriation_id
    )
    cancelled = await service.cancel_repatriation(
        session, actor=actor, repatriation=repatriation, reason=CancelReason(body.reason)
    )
    return (await service.repatriations_public(session, [cancelled]))[0]
