"""Roles and the login rule."""

from __future__ import annotations

from service.identity.rules import Permission, Role, has_permission, login_blocked


def test_only_case_roles_read_cases() -> None:
    readers = {r for r in Role if has_permission(r, Permission.cases_read)}
    assert readers == {Role.identifier, Role.caseworker, Role.shelter_staff, Role.legal_aid}


def test_analysts_see_statistics_and_never_cases_or_audit() -> None:
    assert has_permission(Role.analyst, Permission.stats_read)
    assert not has_permission(Role.analyst, Permission.person_read)
    assert not has_permission(Role.analyst, Permission.audit_read)


def test_unknown_role_has_no_permission() -> None:
    assert not has_permission("superuser", Permission.cases_read)


def test_login_blocked_at_either_limit() -> None:
    limits = {"max_per_username": 5, "max_per_address": 20}
    assert not login_blocked(failures_for_username=4, failures_for_address=19, **limits)
    assert login_blocked(failures_for_username=5, failures_for_address=0, **limits)
    assert login_blocked(failures_for_username=0, failures_for_address=20, **limits)
