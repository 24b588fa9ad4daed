"""/v1/facilities, /v1/cases/{case_id}/placements, /v1/placements, /v1/capacity, /v1/directory."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Response, status

from service.capacity import service
from service.capacity.rules import EndReason, FacilityKind, PlacementOutcome, WithdrawReason
from service.capacity.schemas import (
    AsOf,
    CapacityChange,
    CapacitySummary,
    DecisionPublic,
    FacilityCreate,
    FacilityPublic,
    PlacementCreate,
    PlacementEnd,
    PlacementPublic,
    PlacementRequestPublic,
    PlacementResult,
    RequestWithdraw,
    RiskChange,
)
from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.preconditions import IfMatchDep, set_etag, versioned_read, versioned_write
from service.core.schemas import RegionCode
from service.core.security import Actor
from service.identity.dependencies import ActorDep, AuthenticatedRoute, SecurityDep, require
from service.identity.rules import Permission
from service.pathway import placement as placement_flow

router = Router(prefix="/v1", tags=["capacity"], route_class=AuthenticatedRoute)

FacilityAdminDep = Annotated[Actor, Depends(require(Permission.facilities_manage))]


@router.get(
    "/facilities",
    response_model=list[FacilityPublic],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_facilities(
    actor: ActorDep,
    session: SessionDep,
    region: RegionCode | None = None,
    kind: FacilityKind | None = None,
    eligible_for_case: uuid.UUID | None = None,
    has_free_bed: bool | None = None,
) -> list[FacilityPublic]:
    """Facilities with their beds: capacity, occupied, held, available. `eligible_for_case`
    keeps those that could take the person of a case the caller sees (403 for a role that
    sees no case, 404 for a case not visible to the caller's organization)."""
    return await service.list_facilities(
        session,
        actor=actor,
        region=region,
        kind=kind,
        eligible_for_case=eligible_for_case,
        has_free_bed=has_free_bed,
    )


@router.post(
    "/facilities",
    response_model=FacilityPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
    openapi_extra=versioned_read("201"),
)
async def create_facility(
    body: FacilityCreate, actor: FacilityAdminDep, session: SessionDep, response: Response
) -> FacilityPublic:
    """Open a facility (administrators)."""
    facility = await service.create_facility(session, actor=actor, data=body)
    set_etag(response, facility)
    [public] = await service.facilities_public(session, [facility], actor=actor)
    return public


@router.get(
    "/facilities/{facility_id}",
    response_model=FacilityPublic,
    responses=problem_responses(401, 404, 422),
    openapi_extra=versioned_read(),
)
async def read_facility(
    facility_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    response: Response,
    as_of: AsOf | None = None,
) -> FacilityPublic:
    """One facility now, or `as_of` a past moment (capacity and occupancy from history). Now,
    with its ETag, which moves with its capacity, status and beds in use."""
    facility = await service.get_facility(session, facility_id)
    if as_of is not None:
        return await service.facility_as_of(session, actor=actor, facility=facility, as_of=as_of)
    set_etag(response, facility)
    [public] = await service.facilities_public(session, [facility], actor=actor)
    return public


@router.post(
    "/facilities/{facility_id}/capacity-changes",
    response_model=FacilityPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def change_capacity(
    facility_id: uuid.UUID,
    body: CapacityChange,
    actor: ActorDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> FacilityPublic:
    """Add or remove beds, close or reopen (administrators); dated history is kept."""
    facility = await service.change_capacity(
        session, actor=actor, facility_id=facility_id, data=body, if_match=if_match
    )
    [public] = await service.facilities_public(session, [facility], actor=actor)
    set_etag(response, facility)
    return public


@router.post(
    "/cases/{case_id}/placements",
    response_model=PlacementResult,
    status_code=status.HTTP_201_CREATED,
    responses={
        202: {"model": PlacementResult, "description": "Waitlisted"},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def request_placement(
    body: PlacementCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    response: Response,
) -> PlacementResult:
    """Place in the given facility, or find a bed: 201 placed (or held), 202 waitlisted with
    the position, 201 unmet_need with the reason when no facility in the country can take
    the person. Only the facility's operator, or an organization that accepted a shelter
    referral of the case, may ask (403); an adult needs her consent to services (409)."""
    result = await placement_flow.request_placement(session, actor=actor, case=case, data=body)
    if result.outcome is PlacementOutcome.waitlisted:
        response.status_code = status.HTTP_202_ACCEPTED
    return result


@router.get(
    "/cases/{case_id}/placements",
    response_model=list[PlacementPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_case_placements(case: CaseDep, session: SessionDep) -> list[PlacementPublic]:
    """The case's placements and holds, newest first."""
    return await service.case_placements(session, case.id)


@router.post(
    "/placements/{placement_id}/end",
    response_model=PlacementPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def end_placement(
    placement_id: uuid.UUID, body: PlacementEnd, actor: CaseWriterDep, session: SessionDep
) -> PlacementPublic:
    """Discharge or transfer; the bed goes to the first eligible person on the waitlist. Only
    the facility's operator, or an organization that accepted a shelter referral of the
    case, may (403)."""
    placement = await placement_flow.end_placement(
        session, actor=actor, placement_id=placement_id, reason=EndReason(body.reason)
    )
    [public] = await service.placements_public(session, [placement])
    return public


@router.post(
    "/placements/{placement_id}/arrive",
    response_model=PlacementPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def confirm_arrival(
    placement_id: uuid.UUID, actor: CaseWriterDep, session: SessionDep
) -> PlacementPublic:
    """The person a bed was held for has arrived. Only the facility's operator, or an
    organization that accepted a shelter referral of the case, may say so (403)."""
    placement = await placement_flow.confirm_arrival(
        session, actor=actor, placement_id=placement_id
    )
    [public] = await service.placements_public(session, [placement])
    return public


@router.get(
    "/cases/{case_id}/placement-requests",
    response_model=list[PlacementRequestPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_case_placement_requests(
    case: CaseDep, session: SessionDep
) -> list[PlacementRequestPublic]:
    """The case's requests for a bed, newest first; a waiting one with its position."""
    return [
        await service.request_public(session, r)
        for r in await service.case_requests(session, case.id)
    ]


@router.get(
    "/placement-requests/{request_id}",
    response_model=PlacementRequestPublic,
    responses=problem_responses(401, 403, 404),
)
async def read_placement_request(
    request_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep
) -> PlacementRequestPublic:
    """A request for a bed, with its place on the waitlist while it waits."""
    request = await service.get_request_for(session, actor=actor, request_id=request_id)
    return await service.request_public(session, request)


@router.post(
    "/placement-requests/{request_id}/risk",
    response_model=PlacementRequestPublic,
    responses=problem_responses(401, 403, 404, 409, 410, 422),
)
async def change_request_risk(
    request_id: uuid.UUID,
    body: RiskChange,
    actor: CaseWriterDep,
    security: SecurityDep,
    session: SessionDep,
) -> PlacementRequestPublic:
    """The waiting person's risk changed: re-ordered at once, dated and audited; the reason is
    sealed under the person's data key and returned by no route. Answers the new position."""
    request = await service.change_risk(
        session,
        actor=actor,
        request_id=request_id,
        keyring=security.keyring,
        risk_level=body.risk_level,
        reason=body.reason,
    )
    return await service.request_public(session, request)


@router.post(
    "/placement-requests/{request_id}/withdraw",
    response_model=PlacementRequestPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def withdraw_placement_request(
    request_id: uuid.UUID, body: RequestWithdraw, actor: CaseWriterDep, session: SessionDep
) -> PlacementRequestPublic:
    """Take the person off the waitlist, with the reason."""
    request = await service.withdraw_request(
        session, actor=actor, request_id=request_id, reason=WithdrawReason(body.reason)
    )
    return await service.request_public(session, request)


@router.get(
    "/placements/{placement_id}/decision",
    response_model=DecisionPublic,
    responses=problem_responses(401, 403, 404),
)
async def read_decision(
    placement_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep
) -> DecisionPublic:
    """The allocation decision behind a placement: inputs, rule version, choice and why."""
    decision = await service.get_decision(session, actor=actor, placement_id=placement_id)
    return DecisionPublic.model_validate(decision, from_attributes=True)


@router.get("/capacity/summary", response_model=CapacitySummary, responses=problem_responses(401))
async def capacity_summary(_: ActorDep, session: SessionDep) -> CapacitySummary:
    """Beds nationally and by region: capacity, occupied, held, available, waitlist; unmet
    needs by reason. Aggregates only."""
    return await service.capacity_summary(session)


@router.get("/directory/hsds", responses=problem_responses(401))
async def hsds_directory(_: ActorDep, session: SessionDep) -> dict[str, Any]:
    """The facility directory in the Open Referral HSDS shape."""
    return await service.hsds_directory(session)
