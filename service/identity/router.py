"""/v1/auth and /v1/me: sign in and see who you are."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from service.core.db import RetryingRoute
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.security import Actor
from service.identity import service
from service.identity.dependencies import DatabaseDep, PrincipalDep, SecurityDep, SettingsDep
from service.identity.rules import Role
from service.identity.schemas import Me, OrganizationPublic, Token

router = Router(prefix="/v1", tags=["auth"], route_class=RetryingRoute)


@router.post("/auth/token", response_model=Token, responses=problem_responses(401, 422, 429))
async def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    security: SecurityDep,
) -> Token:
    """Exchange a username and password for a short-lived bearer token."""
    client = request.client.host if request.client else "unknown"
    # No request transaction: the password check must not run inside one (see log_in).
    return await service.log_in(
        db,
        settings=settings,
        security=security,
        username=form.username,
        password=form.password,
        client_address=client,
    )


@router.get("/me", response_model=Me, responses=problem_responses(401))
async def read_me(principal: PrincipalDep) -> Me:
    """The calling user, their role and organization."""
    actor, org = principal
    return _me(actor, org)


def _me(actor: Actor, org: OrganizationPublic) -> Me:
    return Me(id=actor.user_id, username=actor.username, role=Role(actor.role), organization=org)
