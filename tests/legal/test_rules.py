"""Legal aid and interview rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

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


def test_the_minimum_sentence_follows_the_charge_and_the_youngest_victims_age() -> None:
    years = 12
    trafficking, aggravated = rules.Charge.trafficking, rules.Charge.aggravated_trafficking
    assert rules.minimum_sentence_months(trafficking, 13) == 15 * years
    assert rules.minimum_sentence_months(trafficking, 14) == 12 * years
    assert rules.minimum_sentence_months(trafficking, 17) == 12 * years
    assert rules.minimum_sentence_months(trafficking, 18) == 8 * years
    assert rules.minimum_sentence_months(trafficking, None) == 8 * years
    assert rules.minimum_sentence_months(aggravated, 30) == 12 * years
    assert rules.minimum_sentence_months(aggravated, 16) == 12 * years
    assert rules.minimum_sentence_months(aggravated, 10) == 15 * years
    assert rules.minimum_sentence_months(rules.Charge.forced_labour, 10) == 6 * years
    assert rules.minimum_sentence_months(rules.Charge.pimping, 10) is None


def test_only_a_conviction_is_flagged_and_a_lesser_charge_is_a_reduction() -> None:
    def judge(
        outcome: rules.Outcome, filed: rules.Charge, charge: rules.Charge | None, months: int | None
    ) -> rules.SentenceFlags:
        return rules.judge_outcome(
            outcome=outcome,
            charge_filed=filed,
            charge=charge,
            sentence_months=months,
            youngest_victim_age=20,
        )

    convicted, t = rules.Outcome.convicted, rules.Charge.trafficking
    assert judge(convicted, t, t, 95).below_legal_minimum
    assert not judge(convicted, t, t, 96).below_legal_minimum
    assert judge(convicted, t, rules.Charge.pimping, 12).charge_reduced
    assert judge(convicted, t, rules.Charge.forced_labour, 72).charge_reduced
    assert not judge(convicted, rules.Charge.aggravated_trafficking, t, 96).charge_reduced
    assert not judge(convicted, rules.Charge.pimping, rules.Charge.pimping, 12).charge_reduced
    acquitted = judge(rules.Outcome.acquitted, t, rules.Charge.pimping, None)
    assert not acquitted.below_legal_minimum
    assert not acquitted.charge_reduced
    assert acquitted.rule_version == rules.SENTENCING_RULE_VERSION


def test_a_proceeding_moves_only_forward() -> None:
    status = rules.ProceedingStatus
    assert rules.status_moves_forward(status.complaint, status.investigation)
    assert rules.status_moves_forward(status.investigation, status.trial)
    assert not rules.status_moves_forward(status.trial, status.trial)
    assert not rules.status_moves_forward(status.trial, status.prosecution)
    assert rules.before_trial(status.prosecution)
    assert not rules.before_trial(status.trial)


def test_only_a_conviction_carries_a_sentence_or_a_fine() -> None:
    outcome = rules.Outcome
    assert rules.outcome_error(outcome.convicted, sentence_months=0, fine_soles=None) is None
    assert rules.outcome_error(outcome.convicted, sentence_months=None, fine_soles=None)
    assert rules.outcome_error(outcome.acquitted, sentence_months=12, fine_soles=None)
    assert rules.outcome_error(outcome.dismissed, sentence_months=None, fine_soles=Decimal(5))
    assert rules.outcome_error(outcome.ongoing, sentence_months=None, fine_soles=None)
    assert rules.outcome_error(outcome.suspended, sentence_months=None, fine_soles=None) is None
    assert rules.defendant_label(3) == "D3"
