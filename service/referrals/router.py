"""/v1/referrals and /v1/cases/{case_id}/referrals: sending and answering referrals."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Depends, Query, Response, status

from service.cases.dependencies import CaseDep, CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.pagination import Page, PageParams, page_params
from service.core.preconditions import IfMatchDep, set_etag, versioned_read, versioned_write
from service.identity.dependencies import AuthenticatedRoute, SecurityDep, SettingsDep
from service.referrals import service
from service.referrals.rules import ReferralAction, ReferralStatus
from service.referrals.schemas import (
    ReferralCreate,
    ReferralPublic,
    ReferralReason,
    ReferralRejection,
)

router = Router(prefix="/v1", tags=["referrals"], route_class=AuthenticatedRoute)

_ANSWERS = problem_responses(401, 403, 404, 409, 410, 412, 422)


@router.post(
    "/cases/{case_id}/referrals",
    response_model=ReferralPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 410, 422),
    openapi_extra=versioned_read("201"),
)
async def send_referral(
    body: ReferralCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    settings: SettingsDep,
    security: SecurityDep,
    response: Response,
) -> ReferralPublic:
    """Refer the person to another organization (status requested)."""
    referral = await service.send_referral(
        session, actor=actor, settings=settings, keyring=security.keyring, case=case, data=body
    )
    set_etag(response, referral)
    [public] = await service.referral_public(
        session, keyring=security.keyring, referrals=[referral]
    )
    return public


@router.get(
    "/referrals", response_model=Page[ReferralPublic], responses=problem_responses(401, 403, 422)
)
async def list_referrals(
    actor: CaseReaderDep,
    session: SessionDep,
    security: SecurityDep,
    page: Annotated[PageParams, Depends(page_params)],
    direction: Literal["incoming", "outgoing"] = "incoming",
    status: Annotated[list[ReferralStatus] | None, Query()] = None,
    case_id: uuid.UUID | None = None,
) -> Page[ReferralPublic]:
    """The organization's incoming or outgoing referrals, newest first."""
    rows, next_cursor = await service.list_referrals(
        session, actor=actor, direction=direction, statuses=status or [], page=page, case_id=case_id
    )
    items = await service.referral_public(session, keyring=security.keyring, referrals=rows)
    return Page[ReferralPublic](items=items, next_cursor=next_cursor)


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralPublic,
    responses=problem_responses(401, 403, 404),
    openapi_extra=versioned_read(),
)
async def read_referral(
    referral_id: uuid.UUID,
    actor: CaseReaderDep,
    session: SessionDep,
    security: SecurityDep,
    response: Response,
) -> ReferralPublic:
    """One referral the caller's organization sent or received, with its ETag."""
    referral, _ = await service.get_referral_for(
        session, actor=actor, referral_id=referral_id, lock=False
    )
    set_etag(response, referral)
    [public] = await service.referral_public(
        session, keyring=security.keyring, referrals=[referral]
    )
    return public


async def _act(
    session: SessionDep,
    security: SecurityDep,
    actor: CaseWriterDep,
    referral_id: uuid.UUID,
    action: ReferralAction,
    if_match: IfMatchDep,
    response: Response,
    reason: str | None = None,
) -> ReferralPublic:
    referral = await service.act_on_referral(
        session,
        actor=actor,
        referral_id=referral_id,
        action=action,
        keyring=security.keyring,
        reason=reason,
        if_match=if_match,
    )
    [public] = await service.referral_public(
        session, keyring=security.keyring, referrals=[referral]
    )
    set_etag(response, referral)
    return public


@router.post(
    "/referrals/{referral_id}/accept",
    response_model=ReferralPublic,
    responses=_ANSWERS,
    openapi_extra=versioned_write(),
)
async def accept_referral(
    referral_id: uuid.UUID,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> ReferralPublic:
    """The receiving organization takes the person on; it becomes involved in the case."""
    return await _act(
        session, security, actor, referral_id, ReferralAction.accept, if_match, response
    )


@router.post(
    "/referrals/{referral_id}/reject",
    response_model=ReferralPublic,
    responses=_ANSWERS,
    openapi_extra=versioned_write(),
)
async def reject_referral(
    referral_id: uuid.UUID,
    body: ReferralRejection,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> ReferralPublic:
    """The receiving organization declines, with a reason."""
    return await _act(
        session,
        security,
        actor,
        referral_id,
        ReferralAction.reject,
        if_match,
        response,
        body.reason,
    )


@router.post(
    "/referrals/{referral_id}/start",
    response_model=ReferralPublic,
    responses=_ANSWERS,
    openapi_extra=versioned_write(),
)
async def start_referral(
    referral_id: uuid.UUID,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> ReferralPublic:
    """The receiving organization has begun the service."""
    return await _act(
        session, security, actor, referral_id, ReferralAction.start, if_match, response
    )


@router.post(
    "/referrals/{referral_id}/complete",
    response_model=ReferralPublic,
    responses=_ANSWERS,
    openapi_extra=versioned_write(),
)
async def complete_referral(
    referral_id: uuid.UUID,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> ReferralPublic:
    """The receiving organization has finished the service."""
    return await _act(
        session, security, actor, referral_id, ReferralAction.complete, if_match, response
    )


@router.post(
    "/referrals/{referral_id}/cancel",
    response_model=ReferralPublic,
    responses=_ANSWERS,
    openapi_extra=versioned_write(),
)
async def cancel_referral(
    referral_id: uuid.UUID,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
    body: ReferralReason | None = None,
) -> ReferralPublic:
    """The sending organization withdraws the referral."""
    return await _act(
        session,
        security,
        actor,
        referral_id,
        ReferralAction.cancel,
        if_match,
        response,
        body.reason if body else None,
    )
