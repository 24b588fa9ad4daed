"""Legal aid and interview rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.identity.rules import Role
from service.legal import rules


def test_only_an_active_legal_aid_user_can_defend() -> None:
    assert rules.can_defend(role=Role.legal_aid.value, is_active=True)
    assert not rules.can_defend(role=Role.legal_aid.value, is_active=False)
    for role in set(Role) - {Role.legal_aid}:
        assert not rules.can_defend(role=role.value, is_active=True)


def test_the_first_interview_is_not_repeated_any_other_is() -> None:
    assert not rules.interview_is_repeated(0)
    assert rules.interview_is_repeated(1)
    assert rules.interview_is_repeated(5)


def test_a_defender_is_overdue_from_the_configured_day_on() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert not rules.defender_overdue(
        in_care_since=now - timedelta(days=7) + timedelta(seconds=1), now=now, days=7
    )
    assert rules.defender_overdue(in_care_since=now - timedelta(days=7), now=now, days=7)
    assert rules.alert_cutoff(now=now, days=7) == now - timedelta(days=7)
