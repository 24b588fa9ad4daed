"""Who is calling: the bearer token checked, the user loaded, the permission required."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database, get_session, opens_session
from service.core.errors import Forbidden
from service.core.idempotency import IdempotentRoute
from service.core.logs import note_actor
from service.core.ratelimit import limit_user
from service.core.security import Actor, InvalidToken, Security
from service.core.settings import Settings
from service.identity import rules, service
from service.identity.exceptions import InvalidCredentialsToken
from service.identity.schemas import OrganizationPublic

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /v1/auth/token")


# The dependencies that only read app.state are coroutines: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop (and GIL handover) at every request.


async def get_security(request: Request) -> Security:
    security: Security = request.app.state.security
    return security


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    """The database itself, for the one endpoint that runs its own short transactions."""
    db: Database = request.app.state.db
    return db


SecurityDep = Annotated[Security, Depends(get_security)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[Actor, OrganizationPublic]:
    """The caller and their organization, from a valid bearer token of an active user (one
    statement, or none while the token's user is in the worker's PrincipalCache); 401
    otherwise. Read in the request's session when its route takes one, else with
    `Database.fetch`: a route that needs no session (`/v1/me`, the case read) opens none,
    and no request holds two pooled connections or queues twice for them.

    Every authenticated request resolves this chain, and FastAPI's resolution costs per
    dependency: what only reads app.state is read here, not asked for as a dependency."""
    security: Security = request.app.state.security
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidCredentialsToken("A bearer token is required.")
    try:
        claims = await security.tokens.verify(credentials.credentials)
    except InvalidToken as exc:
        raise InvalidCredentialsToken("The token is invalid or has expired.") from exc
    await limit_user(request, f"{claims.issuer}|{claims.subject}")
    principals: service.PrincipalCache = request.app.state.principals
    # In the request's session when the route has one (one pooled connection for the whole
    # request), else outside any (`/v1/me` and the case read open none).
    source: Database | AsyncSession = (
        await get_session(request)
        if opens_session(request.scope.get("route"))
        else request.app.state.db
    )
    actor, organization = await principals.principal(source, claims)
    note_actor(user_id=actor.user_id, organization_code=actor.organization_code, role=actor.role)
    return actor, organization


PrincipalDep = Annotated[tuple[Actor, OrganizationPublic], Depends(get_principal)]


async def get_actor(principal: PrincipalDep) -> Actor:
    """The caller, from a valid bearer token of an active user; 401 otherwise."""
    return principal[0]


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_user_id(actor: ActorDep) -> uuid.UUID:
    """The caller's user id: what an Idempotency-Key is scoped to."""
    return actor.user_id


class AuthenticatedRoute(IdempotentRoute):
    """The route class of every router behind a bearer token: its POSTs take an
    Idempotency-Key scoped to the caller (service/core/idempotency.py)."""

    principal = staticmethod(get_user_id)


def require(
    permission: rules.Permission,
) -> Callable[[tuple[Actor, OrganizationPublic]], Awaitable[Actor]]:
    """A dependency answering 403 unless the caller's role grants `permission`."""

    async def dependency(principal: PrincipalDep) -> Actor:
        actor = principal[0]  # not ActorDep: one dependency fewer to resolve per request
        if not rules.has_permission(actor.role, permission):
            raise Forbidden(f"The role {actor.role!r} may not do this ({permission.value}).")
        return actor

    return dependency
