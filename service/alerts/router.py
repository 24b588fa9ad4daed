"""/v1/alerts: what needs attention now, for the caller's organization."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from service.alerts import service
from service.alerts.rules import AlertStatus
from service.alerts.schemas import AlertPublic
from service.cases.dependencies import CaseReaderDep, CaseWriterDep
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.pagination import Page, PageParams, page_params
from service.identity.dependencies import AuthenticatedRoute

router = Router(prefix="/v1/alerts", tags=["alerts"], route_class=AuthenticatedRoute)


@router.get("", response_model=Page[AlertPublic], responses=problem_responses(401, 403, 422))
async def list_alerts(
    actor: CaseReaderDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[list[AlertStatus] | None, Query()] = None,
    case_id: uuid.UUID | None = None,
) -> Page[AlertPublic]:
    """Open (by default) alerts of the cases the caller's organization is involved in,
    oldest first."""
    rows, next_cursor = await service.list_alerts(
        session, actor=actor, statuses=status or [AlertStatus.open], page=page, case_id=case_id
    )
    items = [AlertPublic.model_validate(a, from_attributes=True) for a in rows]
    return Page[AlertPublic](items=items, next_cursor=next_cursor)


@router.post(
    "/{alert_id}/acknowledge",
    response_model=AlertPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def acknowledge_alert(
    alert_id: uuid.UUID, actor: CaseWriterDep, session: SessionDep
) -> AlertPublic:
    """Someone is on it."""
    alert = await service.change_alert(
        session, actor=actor, alert_id=alert_id, to=AlertStatus.acknowledged
    )
    return AlertPublic.model_validate(alert, from_attributes=True)


@router.post(
    "/{alert_id}/resolve",
    response_model=AlertPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def resolve_alert(
    alert_id: uuid.UUID, actor: CaseWriterDep, session: SessionDep
) -> AlertPublic:
    """The situation is over; the alert stays on record."""
    alert = await service.change_alert(
        session, actor=actor, alert_id=alert_id, to=AlertStatus.resolved
    )
    return AlertPublic.model_validate(alert, from_attributes=True)
