"""Organizations, users, logins and turning a verified token into an actor.

A password login is three steps, so that the costly argon2 check never runs on the event
loop nor inside a transaction: a short writing transaction claims the attempt (the address
and the account are locked, the failures counted and the attempt recorded as a failure until
proven otherwise, so concurrent guesses cannot all slip under the limits); the hash is checked in a
thread with no transaction open; a second short transaction records the outcome.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.db import (
    Database,
    for_update,
    insert_ignoring_conflicts,
    read_rows,
    serialize_on,
    table_of,
)
from service.core.security import Actor, Security, TokenClaims
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity import rules
from service.identity.exceptions import (
    InvalidCredentialsToken,
    LastAdministrator,
    LoginFailed,
    LoginRateLimited,
    OrganizationNotFound,
    UnknownOrganization,
    UnknownUser,
    UsernameTaken,
)
from service.identity.models import AppUser, LoginAddress, LoginAttempt, Organization
from service.identity.schemas import OrganizationPublic, Token, UserSummary


async def get_organization_by_code(session: AsyncSession, code: str) -> Organization:
    """The organization with this code, or OrganizationNotFound."""
    org = (await session.exec(select(Organization).where(Organization.code == code))).first()
    if org is None:
        raise OrganizationNotFound("No organization has this code.")
    return org


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> AppUser | None:
    """The user with this id, or None."""
    return await session.get(AppUser, user_id)


async def get_organizations(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    """Organizations by id (those that exist)."""
    if not ids:
        return {}
    rows = await session.exec(select(Organization).where(col(Organization.id).in_(set(ids))))
    return {org.id: org for org in rows.all()}


def organization_code_of(organization_id: Any) -> sa.ScalarSelect[str]:
    """The code of the organization a column names, as a correlated subquery: another
    domain reads it in its own statement, with no round trip of its own."""
    org = table_of(Organization)
    return sa.select(org.c.code).where(org.c.id == organization_id).scalar_subquery()


async def organization_codes(
    session: AsyncSession, ids: Iterable[uuid.UUID | None] | None = None
) -> dict[uuid.UUID, str]:
    """Organizations' codes (as the API names them) by id: of the organizations with these
    ids (None skipped, unknown ids left out), or of every organization without ids."""
    stmt = select(Organization.id, Organization.code)
    if ids is not None:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        stmt = stmt.where(col(Organization.id).in_(wanted))
    return {org_id: code for org_id, code in (await session.exec(stmt)).all()}


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
    # Hashed in a thread, before the first statement: no write lock is held meanwhile.
    password_hash = await _hash(security, password) if password is not None else None
    org = (
        await session.exec(select(Organization).where(Organization.code == organization_code))
    ).first()
    if org is None:
        raise UnknownOrganization("organization", "no organization has this code")
    if (await session.exec(select(AppUser).where(AppUser.username == username))).first():
        raise UsernameTaken("The username is already in use.")
    user = AppUser(
        username=username,
        organization_id=org.id,
        role=rules.Role(role).value,
        password_hash=password_hash,
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
    """Replace a user's password and revoke the user's earlier tokens; audited without the
    password."""
    password_hash = await _hash(security, password)
    user = await _user_to_change(session, username)
    user.password_hash = password_hash
    user.token_generation += 1
    session.add(user)
    record_event(
        session,
        actor=actor,
        action="user.password_set",
        entity_type="user",
        entity_id=user.id,
        changes={"password": {"changed": True}, "tokens": {"revoked": True}},
    )
    return user


# Named by every change that may take an active administrator away: they run one after
# another, so that two of them cannot each count the other's administrator as the one left.
_ADMIN_CHANGES = "identity:active-administrators"


async def _user_to_change(
    session: AsyncSession, username: str, *, may_remove_admin: bool = False
) -> AppUser:
    """The user of that name, its row locked for the change; UnknownUser otherwise.

    A change that may take an administrator away is first serialized with every other such
    change (before the row lock, the order logins take locks in too: never a cycle)."""
    if may_remove_admin:
        await serialize_on(session, _ADMIN_CHANGES)
    stmt = for_update(select(AppUser).where(AppUser.username == username), session)
    user = (await session.exec(stmt)).first()
    if user is None:
        raise UnknownUser("username", "no user has this username")
    return user


async def _refuse_removing_last_admin(
    session: AsyncSession, user: AppUser, *, role: str, active: bool
) -> None:
    """LastAdministrator if giving `user` this role and state would leave no active
    administrator. Counted under the _ADMIN_CHANGES lock when the change may remove one, so
    the count holds until the transaction commits."""
    others = select(func.count()).where(
        AppUser.role == rules.Role.admin.value,
        col(AppUser.is_active).is_(True),
        AppUser.id != user.id,
    )
    other_active_admins: int = (await session.exec(others)).one()
    if rules.removes_last_admin(
        admin_before=rules.is_active_admin(user.role, active=user.is_active),
        admin_after=rules.is_active_admin(role, active=active),
        other_active_admins=other_active_admins,
    ):
        raise LastAdministrator(
            "This is the last active administrator: make another user an administrator"
            " (or enable one) first."
        )


async def set_active(
    session: AsyncSession, *, actor: Actor | None, username: str, active: bool
) -> bool:
    """Enable or disable a user; audited. Disabling revokes every token the user holds at
    once (enabling again does not revive them: the user signs in anew); the last active
    administrator is never disabled (LastAdministrator). Returns whether anything changed."""
    # Only disabling may take an administrator away.
    user = await _user_to_change(session, username, may_remove_admin=not active)
    if user.is_active == active:
        return False
    await _refuse_removing_last_admin(session, user, role=user.role, active=active)
    user.is_active = active
    if not active:
        user.token_generation += 1
    session.add(user)
    record_event(
        session,
        actor=actor,
        action="user.enabled" if active else "user.disabled",
        entity_type="user",
        entity_id=user.id,
        changes={"active": {"from": not active, "to": active}},
    )
    return True


async def set_role(
    session: AsyncSession, *, actor: Actor | None, username: str, role: rules.Role
) -> str | None:
    """Give a user another role, in force at the user's next request on PostgreSQL, within
    RUTA_PRINCIPAL_CACHE_SECONDS on SQLite (PrincipalCache); audited. The last active
    administrator keeps the admin role (LastAdministrator). Returns the former role, None if
    unchanged."""
    user = await _user_to_change(session, username, may_remove_admin=role != rules.Role.admin)
    before = user.role
    if before == role.value:
        return None
    await _refuse_removing_last_admin(session, user, role=role, active=user.is_active)
    user.role = role.value
    session.add(user)
    record_event(
        session,
        actor=actor,
        action="user.role_changed",
        entity_type="user",
        entity_id=user.id,
        changes={"role": {"from": before, "to": user.role}},
    )
    return before


async def list_users(
    session: AsyncSession, *, organization_code: str | None = None
) -> list[UserSummary]:
    """Every user (of one organization if given), by organization then username, with the
    last password sign-in known (the newest address they signed in from)."""
    last_login = (
        select(
            col(LoginAddress.user_id).label("user_id"),
            func.max(LoginAddress.last_seen_at).label("last_login_at"),
        )
        .group_by(col(LoginAddress.user_id))
        .subquery()
    )
    stmt = (
        select(AppUser, Organization.code, last_login.c.last_login_at)
        .join(Organization, col(Organization.id) == col(AppUser.organization_id))
        .outerjoin(last_login, last_login.c.user_id == col(AppUser.id))
        .order_by(col(Organization.code), col(AppUser.username))
    )
    if organization_code is not None:
        stmt = stmt.where(Organization.code == organization_code)
    return [
        UserSummary(
            username=user.username,
            organization=code,
            role=rules.Role(user.role),
            active=user.is_active,
            password=user.password_hash is not None,
            last_login_at=last,
            created_at=user.created_at,
        )
        for user, code, last in (await session.exec(stmt)).all()
    ]


async def _hash(security: Security, password: str) -> str:
    return await asyncio.to_thread(security.passwords.hash, password)


async def _last_success(session: AsyncSession, *conditions: Any) -> datetime | None:
    stmt = select(func.max(LoginAttempt.attempted_at)).where(
        col(LoginAttempt.succeeded).is_(True), *conditions
    )
    last: datetime | None = (await session.exec(stmt)).one()
    return last


async def _failures_since(session: AsyncSession, since: datetime, *conditions: Any) -> int:
    stmt = select(func.count()).where(
        col(LoginAttempt.succeeded).is_(False), LoginAttempt.attempted_at > since, *conditions
    )
    count: int = (await session.exec(stmt)).one()
    return count


def _address_hash(security: Security, user_id: uuid.UUID, client_address: str) -> str:
    """A keyed hash of an address, for one user: it cannot be read back, nor matched across
    users."""
    return security.keyring.blind_index("login-address", f"{user_id}:{client_address}")


async def _is_known_address(
    session: AsyncSession, *, settings: Settings, security: Security, user: AppUser, address: str
) -> bool:
    since = utcnow() - timedelta(days=settings.login_known_address_days)
    stmt = select(LoginAddress.user_id).where(
        LoginAddress.user_id == user.id,
        LoginAddress.address_hash == _address_hash(security, user.id, address),
        LoginAddress.last_seen_at >= since,
    )
    return (await session.exec(stmt)).first() is not None


async def _recent_failures(
    session: AsyncSession,
    *,
    settings: Settings,
    security: Security,
    username: str,
    user: AppUser | None,
    client_address: str,
) -> rules.LoginFailures:
    """The failures each limit counts, for an attempt of `username` from `client_address`."""
    window_start = utcnow() - timedelta(seconds=settings.login_window_seconds)
    of_user = LoginAttempt.username == username
    from_address = LoginAttempt.client_address == client_address
    # A success ends the failures before it: of the username for the username limit, of
    # the username from that address for the pair limit.
    user_success = await _last_success(session, of_user)
    pair_success = await _last_success(session, of_user, from_address)
    return rules.LoginFailures(
        for_pair=await _failures_since(
            session, max(window_start, pair_success or window_start), of_user, from_address
        ),
        for_address=await _failures_since(session, window_start, from_address),
        for_username=await _failures_since(
            session, max(window_start, user_success or window_start), of_user
        ),
        known_address=user is not None
        and await _is_known_address(
            session, settings=settings, security=security, user=user, address=client_address
        ),
    )


def _audit_login(
    session: AsyncSession,
    *,
    actor: Actor | None,
    subject: uuid.UUID | str,
    client_address: str,
    outcome: str,
    refused_by: rules.LoginRefusal | None = None,
) -> None:
    changes: dict[str, Any] = {
        "client_address": {"to": client_address},
        "outcome": {"to": outcome},
    }
    if refused_by is not None:
        changes["limit"] = {"to": refused_by.value}
    record_event(
        session,
        actor=actor,
        action="auth.login_succeeded" if outcome == "succeeded" else "auth.login_failed",
        entity_type="user",
        entity_id=subject,
        changes=changes,
    )


@dataclass(frozen=True)
class _Claim:
    """A login attempt recorded (as a failure); `refused_by` names the limit that refused
    it before its password was checked, if any."""

    attempt_id: uuid.UUID
    user: AppUser | None
    organization: Organization | None
    refused_by: rules.LoginRefusal | None


def _limits(settings: Settings) -> rules.LoginLimits:
    return rules.LoginLimits(
        per_pair=settings.login_max_failures_per_username_address,
        per_address=settings.login_max_failures_per_address,
        per_username=settings.login_max_failures_per_username,
    )


async def _claim_attempt(
    session: AsyncSession,
    *,
    settings: Settings,
    security: Security,
    username: str,
    client_address: str,
) -> _Claim:
    """Record the attempt, as a failure until the password proves otherwise, and decide
    whether a limit refuses it before its password is checked."""
    # Serialized twice, always in this order (so never in a cycle): on the address, so that
    # concurrent attempts from it over many accounts each count the failures the earlier
    # ones recorded; then on the account's row, for attempts on it from many addresses. An
    # unknown username has no row, but its attempts only ever meet the dummy hash. On SQLite
    # BEGIN IMMEDIATE serializes every writer already.
    await serialize_on(session, f"login-address:{client_address}")
    user = (
        await session.exec(for_update(select(AppUser).where(AppUser.username == username), session))
    ).first()
    failures = await _recent_failures(
        session,
        settings=settings,
        security=security,
        username=username,
        user=user,
        client_address=client_address,
    )
    refused_by = rules.login_refusal(failures, _limits(settings))
    attempt = LoginAttempt(username=username, client_address=client_address, succeeded=False)
    session.add(attempt)
    if refused_by is not None:
        # A refused attempt has no authenticated actor; its subject is the account tried.
        _audit_login(
            session,
            actor=None,
            subject=user.id if user else username,
            client_address=client_address,
            outcome="rate_limited",
            refused_by=refused_by,
        )
        return _Claim(attempt_id=attempt.id, user=user, organization=None, refused_by=refused_by)
    org = await session.get(Organization, user.organization_id) if user else None
    return _Claim(attempt_id=attempt.id, user=user, organization=org, refused_by=None)


async def _record_success(
    session: AsyncSession,
    *,
    security: Security,
    claim: _Claim,
    user: AppUser,
    org: Organization,
    client_address: str,
) -> Actor:
    await session.exec(
        sa.update(table_of(LoginAttempt))
        .where(table_of(LoginAttempt).c.id == claim.attempt_id)
        .values(succeeded=True)
    )
    # The address becomes (or stays) known: the per-username limit never refuses it.
    now = utcnow()
    address_hash = _address_hash(security, user.id, client_address)
    known = table_of(LoginAddress)
    await insert_ignoring_conflicts(
        session,
        known,
        [dict(user_id=user.id, address_hash=address_hash, first_seen_at=now, last_seen_at=now)],
        on=["user_id", "address_hash"],
    )
    await session.exec(
        sa.update(known)
        .where(known.c.user_id == user.id, known.c.address_hash == address_hash)
        .values(last_seen_at=now)
    )
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
    return actor


async def log_in(
    db: Database,
    *,
    settings: Settings,
    security: Security,
    username: str,
    password: str,
    client_address: str,
) -> Token:
    """Check a password login and issue an access token; failures are rate limited and kept.

    Runs its own two short transactions (see the module's docstring), never one around the
    password check; a refused attempt and its audit event are committed before the error.
    The limits are those of rules.login_refusal.
    """
    async with db.session() as session:
        claim = await _claim_attempt(
            session,
            settings=settings,
            security=security,
            username=username,
            client_address=client_address,
        )
    if claim.refused_by is not None:
        raise LoginRateLimited(
            "Too many failed logins for this account or from this address; try again later.",
            retry_after=settings.login_window_seconds,
        )
    user, org = claim.user, claim.organization
    # An unknown account spends the same work on a dummy hash: timing does not tell.
    valid = await asyncio.to_thread(
        security.passwords.verify, user.password_hash if user else None, password
    )
    if user is None or org is None or not valid or not user.is_active:
        async with db.session() as session:
            _audit_login(
                session,
                actor=None,
                subject=user.id if user else username,
                client_address=client_address,
                outcome="failed",
            )
        raise LoginFailed("The username or password is wrong, or the account is disabled.")
    async with db.session() as session:
        await _record_success(
            session,
            security=security,
            claim=claim,
            user=user,
            org=org,
            client_address=client_address,
        )
    token = security.tokens.issue(
        user_id=user.id,
        organization_code=org.code,
        role=user.role,
        generation=user.token_generation,
    )
    return Token(access_token=token, expires_in=security.tokens.ttl_seconds)


async def prune_login_attempts(session: AsyncSession, *, settings: Settings, limit: int) -> int:
    """Delete up to `limit` login attempts older than the rate-limit window (they no longer
    count for any limit), oldest first; returns how many. Run it in batches until it
    returns less than `limit`."""
    cutoff = utcnow() - timedelta(seconds=settings.login_window_seconds)
    table = table_of(LoginAttempt)
    batch = (
        sa.select(table.c.id)
        .where(table.c.attempted_at < cutoff)
        .order_by(table.c.attempted_at)
        .limit(limit)
    )
    result = await session.exec(sa.delete(table).where(table.c.id.in_(batch.scalar_subquery())))
    return int(result.rowcount)


async def prune_login_addresses(session: AsyncSession, *, settings: Settings, limit: int) -> int:
    """Delete up to `limit` remembered login addresses not seen within the known-address
    period (they no longer exempt anyone from a limit), oldest first; returns how many."""
    cutoff = utcnow() - timedelta(days=settings.login_known_address_days)
    table = table_of(LoginAddress)
    batch = (
        sa.select(table.c.user_id, table.c.address_hash)
        .where(table.c.last_seen_at < cutoff)
        .order_by(table.c.last_seen_at)
        .limit(limit)
    )
    key = sa.tuple_(table.c.user_id, table.c.address_hash)
    result = await session.exec(sa.delete(table).where(key.in_(batch)))
    return int(result.rowcount)


async def principal_for_claims(
    source: Database | AsyncSession, claims: TokenClaims
) -> tuple[Actor, OrganizationPublic]:
    """The active user a verified token speaks for, with their organization, in one
    statement (a disabled user is refused at the next read: PrincipalCache says how soon);
    401 when there is none. Read in the session given, or without one (`Database.fetch`)."""
    key: str | uuid.UUID = claims.subject
    if not claims.external:
        try:
            key = uuid.UUID(claims.subject)
        except ValueError as exc:
            raise InvalidCredentialsToken("The token's subject is not a user.") from exc
    stmt = _principal_statement(by_username=claims.external)
    rows = await read_rows(source, stmt, {"key": key})
    row = rows[0] if rows else None
    if row is None or not row.is_active:
        raise InvalidCredentialsToken("The token's user is unknown or disabled.")
    if not claims.external and claims.generation != row.token_generation:
        raise InvalidCredentialsToken("The token was revoked: password reset or account disabled.")
    actor = Actor(
        user_id=row.user_id,
        username=row.username,
        organization_id=row.organization_id,
        organization_code=row.code,
        role=row.role,
    )
    org = OrganizationPublic(
        id=row.organization_id,
        code=row.code,
        name=row.name,
        kind=rules.OrganizationKind(row.kind),
        region=row.region,
    )
    return actor, org


PRINCIPALS_CHANNEL = "ruta_principals"


class PrincipalCache:
    """The principals of recent tokens, each remembered for `seconds` (monotonic clock) so
    that a burst of requests with one token reads its user once. Keyed by the token's
    issuer, subject and generation; at most `size` entries (the oldest go first).

    How soon a change to a user (disabled, another role, a password reset) is seen:
    - on PostgreSQL, at once: triggers (migration 0026) announce every such change on
      PRINCIPALS_CHANNEL, the worker LISTENs (`Database.listen`) and forgets everything it
      remembers (`changed`). While it is not listening (starting, or its connection lost) it
      remembers nothing and reads the user at every request;
    - elsewhere (SQLite), within `seconds`.
    """

    def __init__(self, seconds: float, *, size: int = 10_000) -> None:
        self.seconds = seconds
        self._size = size
        self._entries: dict[tuple[str, str, int], tuple[float, Actor, OrganizationPublic]] = {}
        # Moves at every change announced: a read begun before it is not remembered after.
        self._epoch = 0
        self.serving = True

    def expect_announcements(self) -> None:
        """Changes will be announced (PostgreSQL): serve nothing until `listening(True)`."""
        self.listening(False)

    def listening(self, up: bool) -> None:
        """Whether announcements are heard now; what was remembered before is forgotten
        either way (a change may have gone unheard)."""
        self.serving = up
        self.changed()

    def changed(self) -> None:
        """A user or an organization changed: read every principal again."""
        self._entries.clear()
        self._epoch += 1

    async def principal(
        self, source: Database | AsyncSession, claims: TokenClaims
    ) -> tuple[Actor, OrganizationPublic]:
        """`principal_for_claims`, or what it answered for the same token within `seconds`
        and since the last change announced."""
        if self.seconds <= 0 or not self.serving:
            return await principal_for_claims(source, claims)
        key = (claims.issuer, claims.subject, claims.generation)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1], entry[2]
        epoch = self._epoch
        actor, organization = await principal_for_claims(source, claims)
        if epoch != self._epoch or not self.serving:
            return actor, organization  # read before a change that was announced since
        self._entries.pop(key, None)
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]  # the oldest inserted
        self._entries[key] = (now + self.seconds, actor, organization)
        return actor, organization


@functools.cache
def _principal_statement(*, by_username: bool) -> sa.Select[Any]:
    """The user named `:key` (a username, or a user id) joined to their organization: built
    once, a request binds only its key."""
    user, org = table_of(AppUser), table_of(Organization)
    key = user.c.username if by_username else user.c.id
    return (
        sa.select(
            user.c.id.label("user_id"),
            user.c.username,
            user.c.role,
            user.c.is_active,
            user.c.token_generation,
            user.c.organization_id,
            org.c.code,
            org.c.name,
            org.c.kind,
            org.c.region,
        )
        .join_from(user, org, org.c.id == user.c.organization_id)
        .where(key == sa.bindparam("key"))
    )


async def actor_for_username(session: AsyncSession, username: str) -> Actor | None:
    """The active user of that name as an actor (for commands run on someone's behalf)."""
    stmt = (
        select(AppUser, Organization)
        .join(Organization, col(Organization.id) == col(AppUser.organization_id))
        .where(AppUser.username == username)
    )
    row = (await session.exec(stmt)).first()
    if row is None or not row[0].is_active:
        return None
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


async def get_user_by_username(session: AsyncSession, username: str) -> AppUser | None:
    """The user of that name, if any."""
    return (await session.exec(select(AppUser).where(AppUser.username == username))).first()


async def get_organizations_by_code(
    session: AsyncSession, codes: Sequence[str]
) -> dict[str, Organization]:
    """Organizations by code (those that exist)."""
    if not codes:
        return {}
    rows = await session.exec(select(Organization).where(col(Organization.code).in_(set(codes))))
    return {org.code: org for org in rows.all()}


def select_organization_codes() -> sa.Select[tuple[uuid.UUID, str]]:
    """Every organization's `organization_id` and `code`, as SQL to join in other domains'
    statements."""
    org = table_of(Organization)
    return sa.select(org.c.id.label("organization_id"), org.c.code)
