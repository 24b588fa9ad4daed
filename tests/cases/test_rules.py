"""The case state machine and referral suggestions, without I/O."""

from __future__ import annotations

import pytest

from service.cases.rules import (
    CLOSING_REASONS,
    CaseStatus,
    ClosingReason,
    IllegalTransition,
    TransitionTrigger,
    VictimStatus,
    check_requested_transition,
    status_after,
    suggested_referrals,
)


def test_reintegration_and_repatriation_only_close_cases_in_care() -> None:
    for status, reasons in CLOSING_REASONS.items():
        has_outcomes = {ClosingReason.reintegrated, ClosingReason.repatriated} <= reasons
        assert has_outcomes == (status is CaseStatus.in_care)


def test_a_closed_case_only_reopens() -> None:
    with pytest.raises(IllegalTransition):
        check_requested_transition(
            CaseStatus.closed,
            CaseStatus.closed,
            "lost_contact",
            victim_status=VictimStatus.suspected,
        )
    check_requested_transition(
        CaseStatus.closed, CaseStatus.in_care, "re_trafficked", victim_status=VictimStatus.confirmed
    )


def test_pathway_events_only_move_forward() -> None:
    assert (
        status_after(CaseStatus.identified, TransitionTrigger.referral_sent) is CaseStatus.referred
    )
    assert status_after(CaseStatus.in_care, TransitionTrigger.referral_sent) is None
    assert status_after(CaseStatus.referred, TransitionTrigger.care_started) is CaseStatus.in_care
    assert status_after(CaseStatus.closed, TransitionTrigger.care_started) is None


def test_suggestions_follow_the_pathway() -> None:
    national = suggested_referrals(foreign=False, minor=False, witness=False)
    foreign_child = suggested_referrals(foreign=True, minor=True, witness=True)
    assert national == [("MIMP", "protection_services"), ("MINJUS", "legal_aid")]
    assert foreign_child[0] == ("UNHCR", "refugee_procedure")
    assert ("MIMP", "protection_services") in foreign_child
    assert ("MP", "victim_witness_programme") in foreign_child
