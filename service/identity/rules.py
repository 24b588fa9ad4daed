"""Roles, permissions and the login rate-limit rule: pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    identifier = "identifier"
    caseworker = "caseworker"
    shelter_staff = "shelter_staff"
    legal_aid = "legal_aid"
    analyst = "analyst"
    auditor = "auditor"
    admin = "admin"


class OrganizationKind(StrEnum):
    police = "police"
    ministry = "ministry"
    prosecutor = "prosecutor"
    judiciary = "judiciary"
    migration = "migration"
    un_agency = "un_agency"
    ngo = "ngo"
    regional_government = "regional_government"
    other = "other"


class Permission(StrEnum):
    cases_read = "cases:read"
    cases_write = "cases:write"
    person_read = "person:read"
    consent_override = "consent:override"
    audit_read = "audit:read"
    users_manage = "users:manage"
    facilities_manage = "facilities:manage"
    stats_read = "stats:read"
    simulations_run = "simulations:run"
    # Erase a person's identifying data (her right to erasure, a court order, an error).
    persons_erase = "persons:erase"


_CASE_WORK = frozenset({Permission.cases_read, Permission.cases_write, Permission.person_read})

# Analysts see statistics and never cases; auditors see the audit trail and never cases;
# administrators manage accounts and facilities, read the statistics, and see no case either.
# Analysts and administrators run capacity simulations (planning), which touch no case.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.identifier: _CASE_WORK,
    Role.caseworker: _CASE_WORK | {Permission.consent_override},
    Role.shelter_staff: _CASE_WORK,
    Role.legal_aid: _CASE_WORK,
    Role.analyst: frozenset({Permission.stats_read, Permission.simulations_run}),
    Role.auditor: frozenset({Permission.audit_read}),
    Role.admin: frozenset(
        {
            Permission.users_manage,
            Permission.facilities_manage,
            Permission.audit_read,
            Permission.stats_read,
            Permission.simulations_run,
            Permission.persons_erase,
        }
    ),
}


def has_permission(role: Role | str, permission: Permission) -> bool:
    """Whether a role grants a permission."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def is_active_admin(role: Role | str, *, active: bool) -> bool:
    """Whether an account is an administrator who can sign in (and so manage users)."""
    return active and role == Role.admin


def removes_last_admin(*, admin_before: bool, admin_after: bool, other_active_admins: int) -> bool:
    """Whether a change of one account leaves no active administrator: it was one, is no
    longer (disabled, or given another role), and no other account is. No one could then
    manage users, facilities or erasures through Ruta, short of editing the database."""
    return admin_before and not admin_after and other_active_admins == 0


@dataclass(frozen=True)
class LoginFailures:
    """Failed logins counted in the window, for the attempt about to be checked."""

    # From this address, for this username, since this username last signed in from it.
    for_pair: int
    # From this address, for any username.
    for_address: int
    # For this username, from any address, since it last signed in.
    for_username: int
    # Whether this username has signed in from this address before.
    known_address: bool


@dataclass(frozen=True)
class LoginLimits:
    """The failed-login limits (RUTA_LOGIN_MAX_FAILURES_*)."""

    per_pair: int
    per_address: int
    per_username: int


class LoginRefusal(StrEnum):
    """Which limit refused an attempt before its password was checked."""

    address = "address"
    pair = "username_and_address"
    username = "username"


def login_refusal(failures: LoginFailures, limits: LoginLimits) -> LoginRefusal | None:
    """Which limit refuses a login attempt before its password is even checked, if any.

    The address limit stops one address guessing across many usernames, and the pair limit
    one address guessing one username: both are the address's own doing. The username limit
    stops guesses spread over many addresses, but never refuses an address the user has
    signed in from before, so failures made elsewhere cannot lock the user out.
    """
    if failures.for_address >= limits.per_address:
        return LoginRefusal.address
    if failures.for_pair >= limits.per_pair:
        return LoginRefusal.pair
    if failures.for_username >= limits.per_username and not failures.known_address:
        return LoginRefusal.username
    return None
