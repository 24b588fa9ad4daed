"""Roles, permissions and the login rate-limit rule: pure, no I/O."""

from __future__ import annotations

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
        }
    ),
}


def has_permission(role: Role | str, permission: Permission) -> bool:
    """Whether a role grants a permission."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def login_blocked(
    *,
    failures_for_username: int,
    failures_for_address: int,
    max_per_username: int,
    max_per_address: int,
) -> bool:
    """Whether a login attempt must be refused before the password is even checked."""
    return failures_for_username >= max_per_username or failures_for_address >= max_per_address
