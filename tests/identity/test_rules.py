"""Roles and the login limits."""

from __future__ import annotations

from service.identity.rules import (
    LoginFailures,
    LoginLimits,
    LoginRefusal,
    Permission,
    Role,
    has_permission,
    is_active_admin,
    login_refusal,
    removes_last_admin,
)


def test_only_case_roles_read_cases() -> None:
    readers = {r for r in Role if has_permission(r, Permission.cases_read)}
    assert readers == {Role.identifier, Role.caseworker, Role.shelter_staff, Role.legal_aid}


def test_analysts_see_statistics_and_never_cases_or_audit() -> None:
    assert has_permission(Role.analyst, Permission.stats_read)
    assert not has_permission(Role.analyst, Permission.person_read)
    assert not has_permission(Role.analyst, Permission.audit_read)


def test_unknown_role_has_no_permission() -> None:
    assert not has_permission("superuser", Permission.cases_read)


LIMITS = LoginLimits(per_pair=5, per_address=20, per_username=5)


def _failures(
    pair: int = 0, address: int = 0, username: int = 0, *, known: bool = False
) -> LoginFailures:
    return LoginFailures(
        for_pair=pair, for_address=address, for_username=username, known_address=known
    )


def test_login_is_checked_under_every_limit() -> None:
    assert login_refusal(_failures(4, 19, 4), LIMITS) is None


def test_an_address_failing_for_many_usernames_is_refused() -> None:
    assert login_refusal(_failures(0, 20, 0, known=True), LIMITS) is LoginRefusal.address


def test_an_address_failing_for_one_username_is_refused_even_if_known() -> None:
    assert login_refusal(_failures(5, 5, 5, known=True), LIMITS) is LoginRefusal.pair


def test_failures_spread_over_addresses_refuse_only_unknown_addresses() -> None:
    assert login_refusal(_failures(0, 0, 50), LIMITS) is LoginRefusal.username
    assert login_refusal(_failures(0, 0, 50, known=True), LIMITS) is None


def test_only_the_change_that_leaves_no_active_admin_is_refused() -> None:
    assert is_active_admin(Role.admin, active=True)
    assert not is_active_admin(Role.admin, active=False)
    assert not is_active_admin("caseworker", active=True)
    assert removes_last_admin(admin_before=True, admin_after=False, other_active_admins=0)
    assert not removes_last_admin(admin_before=True, admin_after=False, other_active_admins=1)
    assert not removes_last_admin(admin_before=True, admin_after=True, other_active_admins=0)
    assert not removes_last_admin(admin_before=False, admin_after=False, other_active_admins=0)
