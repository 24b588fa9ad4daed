"""/v1/audit: the audit trail, for auditors and administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from service.audit import service
from service.audit.schemas import AuditEventPublic
from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.pagination import Page, PageParams, page_params
from service.core.schemas import Code
from service.core.security import Actor
from service.core.types import Instant
from service.identity.dependencies import AuthenticatedRoute, require
from service.identity.rules import Permission

router = Router(prefix="/v1/audit", tags=["audit"], route_class=AuthenticatedRoute)

AuditorDep = Annotated[Actor, Depends(require(Permission.audit_read))]


@router.get(
    "/events", response_model=Page[AuditEventPublic], responses=problem_responses(401, 403, 422)
)
async def list_audit_events(
    _: AuditorDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    entity_type: Code | None = None,
    entity_id: Code | None = None,
    actor_user_id: uuid.UUID | None = None,
    action: Code | None = None,
    since: Annotated[Instant | None, Query(description="Inclusive, ISO 8601 with offset")] = None,
    until: Annotated[Instant | None, Query(description="Exclusive, ISO 8601 with offset")] = None,
) -> Page[AuditEventPublic]:
    """Audit events, newest first, filtered by entity, actor, action and time."""
    rows, next_cursor = await service.list_events(
        session,
        page=page,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_user_id=actor_user_id,
        action=action,
        since=since,
        until=until,
    )
    items = [AuditEventPublic.model_validate(r, from_attributes=True) for r in rows]
    return Page[AuditEventPublic](items=items, next_cursor=next_cursor)
