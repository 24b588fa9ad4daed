"""Who is calling: the bearer token checked, the user loaded, the permission required."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import AuditAppender
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


# The caller of the request, once found (see `_BearerScheme`): its principal is asked for by
# several dependencies of some routes (a permission, and the Idempotency-Key's owner).
_PRINCIPAL = "ruta.principal"


class _BearerScheme(SecurityBase):
    """The caller, from a valid bearer token of an active user (one statement, or none while
    the token's user is in the worker's PrincipalCache); 401 otherwise. Read in the
    request's session when its route takes one, else with `Database.fetch`: a route that
    needs no session (`/v1/me`, the case read) opens none, and no request holds two pooled
    connections or queues twice for them.

    A security scheme itself, declared in OpenAPI as HTTP bearer: the token, the caller and
    the permission are ONE dependency of the route. FastAPI's resolution costs per
    dependency and per level (its cache key, its sub-dependencies, its parameters: a third
    of a case read, profiled, when this was three chained dependencies). Found once per
    request, whichever instance asks first."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="Access token from POST /v1/auth/token")
        self.scheme_name = "HTTPBearer"

    async def permitted(self, request: Request, permission: rules.Permission | None) -> Actor:
        """The caller, whose role grants `permission` (403 otherwise); any caller without."""
        actor = (await self.principal(request))[0]
        if permission is not None and not rules.has_permission(actor.role, permission):
            raise Forbidden(f"The role {actor.role!r} may not do this ({permission.value}).")
        return actor

    async def principal(self, request: Request) -> tuple[Actor, OrganizationPublic]:
        found: tuple[Actor, OrganizationPublic] | None = request.scope.get(_PRINCIPAL)
        if found is not None:
            return found
        security: Security = request.app.state.security
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not token or scheme.lower() != "bearer":
            raise InvalidCredentialsToken("A bearer token is required.")
        try:
            claims = await security.tokens.verify(token)
        except InvalidToken as exc:
            raise InvalidCredentialsToken("The token is invalid or has expired.") from exc
        await limit_user(request, f"{claims.issuer}|{claims.subject}")
        principals: service.PrincipalCache = request.app.state.principals
        # In the request's session when the route has one (one pooled connection for the
        # whole request), else outside any (`/v1/me` and the case read open none).
        source: Database | AsyncSession = (
            await get_session(request)
            if opens_session(request.scope.get("route"))
            else request.app.state.db
        )
        actor, organization = await principals.principal(source, claims)
        note_actor(
            user_id=actor.user_id, organization_code=actor.organization_code, role=actor.role
        )
        request.scope[_PRINCIPAL] = (actor, organization)
        return actor, organization


class Principal(_BearerScheme):
    """The caller and their organization (`PrincipalDep`)."""

    async def __call__(self, request: Request) -> tuple[Actor, OrganizationPublic]:
        return await self.principal(request)


class Permitted(_BearerScheme):
    """The caller, whose role grants `permission` (403 otherwise); any caller without."""

    def __init__(self, permission: rules.Permission | None = None) -> None:
        super().__init__()
        self.permission = permission

    async def __call__(self, request: Request) -> Actor:
        return await self.permitted(request, self.permission)


@dataclass(frozen=True, slots=True)
class Reader:
    """The caller of a route that reads without a session of the request (the case read, the
    audited read of a person), and what such a route reads with: the database, the keys, the
    worker's audit appender. ONE dependency (`require_reader`): FastAPI's resolution of a
    dependency costs as much as the dependency is trivial (its cache key, its own request
    parameters, its sub-dependencies): the database and the keys as dependencies of their
    own were a tenth of a case read's instructions (callgrind, bench/RESULTS.md)."""

    actor: Actor
    db: Database
    security: Security
    audit: AuditAppender


class PermittedReader(_BearerScheme):
    """`Permitted`, answering the `Reader`: the caller whose role grants `permission`."""

    def __init__(self, permission: rules.Permission) -> None:
        super().__init__()
        self.permission = permission

    async def __call__(self, request: Request) -> Reader:
        actor = await self.permitted(request, self.permission)
        state = request.app.state
        return Reader(actor=actor, db=state.db, security=state.security, audit=state.audit_appender)


get_principal = Principal()
PrincipalDep = Annotated[tuple[Actor, OrganizationPublic], Depends(get_principal)]
get_actor = Permitted()
ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_user_id(actor: ActorDep) -> uuid.UUID:
    """The caller's user id: what an Idempotency-Key is scoped to."""
    return actor.user_id


class AuthenticatedRoute(IdempotentRoute):
    """The route class of every router behind a bearer token: its POSTs take an
    Idempotency-Key scoped to the caller (service/core/idempotency.py)."""

    principal = staticmethod(get_user_id)


def require(permission: rules.Permission) -> Permitted:
    """A dependency answering 403 unless the caller's role grants `permission`."""
    return Permitted(permission)


def require_reader(permission: rules.Permission) -> PermittedReader:
    """`require`, answering the caller as a `Reader`."""
    return PermittedReader(permission)
