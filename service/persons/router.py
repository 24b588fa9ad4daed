"""/v1/persons: erasing a person, for administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.security import Actor
from service.identity.dependencies import AuthenticatedRoute, SecurityDep, require
from service.identity.rules import Permission
from service.persons import service
from service.persons.schemas import ErasurePublic, ErasureRequest

router = Router(prefix="/v1/persons", tags=["persons"], route_class=AuthenticatedRoute)

EraserDep = Annotated[Actor, Depends(require(Permission.persons_erase))]


@router.post(
    "/{person_id}/erase",
    response_model=ErasurePublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def erase_person(
    person_id: uuid.UUID,
    body: ErasureRequest,
    actor: EraserDep,
    session: SessionDep,
    security: SecurityDep,
) -> ErasurePublic:
    """Erase the person's identifying data, in every record linked with it as the same
    person: names, document, contact details and every text sealed for her become
    unrecoverable; the non-identifying facts and the cases stay, so statistics do not change.
    Reading her identifying data then answers 410 `person_erased`. Idempotent: asked again,
    the same answer, nothing erased twice. A person has no ETag, so no If-Match."""
    return await service.request_erasure(
        session, actor=actor, keyring=security.keyring, person_id=person_id, data=body
    )
