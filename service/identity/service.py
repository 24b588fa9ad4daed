"""Organizations, users, logins and turning a verified token into an actor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.errors import InvalidInput
from service.core.security import Actor, Security, TokenClaims
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity import rules
from service.identity.exceptions import (
    InvalidCredentialsToken,
    LoginFailed,
    LoginRateLimited,
    OrganizationNotFound,
    UnknownOrganization,
    UsernameTaken,
)
from service.identity.models import AppUser, LoginAttempt, Organization
from service.identity.schemas import Token


async def get_organization_by_code(session: AsyncSession, code: str) -> Organization:
    """The organization with this code, or OrganizationNotFound."""
    org = (await session.exec(select(Organization).where(Organization.code == code))).first()
    if org is None:
        raise OrganizationNotFound(f"No organization has the code {code!r}.")
    return org


async def get_organizations(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    """Organizations by id (those that exist)."""
    if not ids:
        return {}
    rows = await session.exec(select(Organization).where(col(Organization.id).in_(set(ids))))
    return {org.id: org for org in rows.all()}


async def list_organizations(session: AsyncSession) -> Sequence[Organization]:
    return (await session.exec(select(Organization).order_by(col(Organization.code)))).all()


async def create_user(
    session: AsyncSession,
    *,
    security: Security,
    actor: Actor | None,
    username: str,
    organization_code: str,
    role: rules.Role,
    password: str | None,
) -> AppUser:
    """Create a user of an organization; audited, the password never recorded."""
    org = (
        await session.exec(select(Organization).where(Organization.code == organization_code))
    ).first()
    if org is None:
        raise UnknownOrganization(
            "organization", f"no organization has the code {organization_code!r}"
        )
    if (await session.exec(select(AppUser).where(AppUser.username == username))).first():
        raise UsernameTaken(f"The username {username!r} is already in use.")
    user = AppUser(
        username=username,
        organization_id=org.id,
        role=rules.Role(role).value,
        password_hash=security.passwords.hash(password) if password is not None else None,
    )
    session.add(user)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        changes={
            "username": {"to": username},
            "organization": {"to": org.code},
            "role": {"to": user.role},
            "password": {"changed": password is not None},
        },
    )
    return user


async def set_password(
    session: AsyncSession, *, security: Security, actor: Actor | None, username: str, password: str
) -> AppUser:
    """Replace a user's password; audited without the password."""
    user = (await session.exec(select(AppUser).where(AppUser.username == username))).first()
    if user is None:
        raise InvalidInput("username", f"no user is named {username!r}")
    user.password_hash = security.passwords.hash(password)
    session.add(user)
    record_event(
        session,
        actor=actor,
        action="user.password_set",
        entity_type="user",
        entity_id=user.id,
        changes={"password": {"changed": True}},
    )
    return user


async def _recent_failures(
    session: AsyncSession, *, settings: Settings, username: str, client_address: str
) -> tuple[int, int]:
    window_start = utcnow() - timedelta(seconds=settings.login_window_seconds)
    last_success = (
        await session.exec(
            select(func.max(LoginAttempt.attempted_at)).where(
                LoginAttempt.username == username, col(LoginAttempt.succeeded).is_(True)
            )
        )
    ).one()
    since_for_user = max(window_start, last_success) if last_success else window_start
    failed = col(LoginAttempt.succeeded).is_(False)
    by_user = (
        await session.exec(
            select(func.count()).where(
                LoginAttempt.username == username,
                failed,
                LoginAttempt.attempted_at > since_for_user,
            )
        )
    ).one()
    by_address = (
        await session.exec(
            select(func.count()).where(
                LoginAttempt.client_address == client_address,
                failed,
                LoginAttempt.attempted_at > window_start,
            )
        )
    ).one()
    return by_user, by_address


def _audit_login(
    session: AsyncSession,
    *,
    actor: Actor | None,
    subject: uuid.UUID | str,
    client_address: str,
    outcome: str,
) -> None:
    record_event(
        session,
        actor=actor,
        action="auth.login_succeeded" if outcome == "succeeded" else "auth.login_failed",
        entity_type="user",
        entity_id=subject,
        changes={"client_address": {"to": client_address}, "outcome": {"to": outcome}},
    )


async def log_in(
    session: AsyncSession,
    *,
    settings: Settings,
    security: Security,
    username: str,
    password: str,
    client_address: str,
) -> Token:
    """Check a password login and issue an access token; failures are rate limited and kept."""
    by_user, by_address = await _recent_failures(
        session, settings=settings, username=username, client_address=client_address
    )
    user = (await session.exec(select(AppUser).where(AppUser.username == username))).first()
    blocked = rules.login_blocked(
        failures_for_username=by_user,
        failures_for_address=by_address,
        max_per_username=settings.login_max_failures_per_username,
        max_per_address=settings.login_max_failures_per_address,
    )
    # A refused attempt has no authenticated actor; its subject is the account tried.
    subject: uuid.UUID | str = user.id if user else username
    if blocked:
        session.add(LoginAttempt(username=username, client_address=client_address, succeeded=False))
        _audit_login(
            session,
            actor=None,
            subject=subject,
            client_address=client_address,
            outcome="rate_limited",
        )
        raise LoginRateLimited(
            "Too many failed logins for this account or address; try again later.",
            retry_after=settings.login_window_seconds,
        )
    valid = security.passwords.verify(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        session.add(LoginAttempt(username=username, client_address=client_address, succeeded=False))
        _audit_login(
            session, actor=None, subject=subject, client_address=client_address, outcome="failed"
        )
        raise LoginFailed("The username or password is wrong, or the account is disabled.")
    org = await session.get(Organization, user.organization_id)
    assert org is not None
    session.add(LoginAttempt(username=username, client_address=client_address, succeeded=True))
    actor = Actor(
        user_id=user.id,
        username=user.username,
        organization_id=org.id,
        organization_code=org.code,
        role=user.role,
    )
    _audit_login(
        session, actor=actor, subject=user.id, client_address=client_address, outcome="succeeded"
    )
    token = security.tokens.issue(user_id=user.id, organization_code=org.code, role=user.role)
    return Token(access_token=token, expires_in=security.tokens.ttl_seconds)


async def actor_for_claims(session: AsyncSession, claims: TokenClaims) -> Actor:
    """The active user a verified token speaks for; 401 when there is none."""
    stmt = select(AppUser, Organization).join(
        Organization, col(Organization.id) == col(AppUser.organization_id)
    )
    if claims.external:
        stmt = stmt.where(AppUser.username == claims.subject)
    else:
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError as exc:
            raise InvalidCredentialsToken("The token's subject is not a user.") from exc
        stmt = stmt.where(AppUser.id == user_id)
    row = (await session.exec(stmt)).first()
    if row is None or not row[0].is_active:
        raise InvalidCredentialsToken("The token's user is unknown or disabled.")
    user, org = row
    return Actor(
        user_id=user.id,
        username=user.username,
        organization_id=org.id,
        organization_code=org.code,
        role=user.role,
    )


async def upsert_organizations(session: AsyncSession, rows: Sequence[dict[str, str | None]]) -> int:
    """Create the organizations whose codes are new; returns how many were created."""
    existing = set((await session.exec(select(Organization.code))).all())
    created = 0
    for row in rows:
        if row["code"] in existing:
            continue
        session.add(Organization.model_validate(row))
        created += 1
    await session.flush()
    return created


async def user_exists(session: AsyncSession, username: str) -> bool:
    stmt = select(AppUser.id).where(AppUser.username == username).limit(1)
    return (await session.exec(stmt)).first() is not None


async def get_organizations_by_code(
    session: AsyncSession, codes: Sequence[str]
) -> dict[str, Organization]:
    """Organizations by code (those that exist)."""
    if not codes:
        return {}
    rows = await session.exec(select(Organization).where(col(Organization.code).in_(set(codes))))
    return {org.code: org for org in rows.all()}
