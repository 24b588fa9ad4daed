"""Properties of the case state machine, over random sequences of requests and events."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from service.cases import rules
from service.cases.rules import (
    CaseStatus,
    ClosingReason,
    IllegalTransition,
    ReopeningReason,
    TransitionTrigger,
    VictimStatus,
)

REASONS = [r.value for r in ClosingReason] + [r.value for r in ReopeningReason] + ["x"]

requests = st.tuples(
    st.just("request"),
    st.sampled_from(CaseStatus),
    st.sampled_from(REASONS),
    st.sampled_from(VictimStatus),
)
events = st.tuples(st.just("event"), st.sampled_from(TransitionTrigger))
histories = st.lists(st.one_of(requests, events), max_size=30)


def _accepts(status: CaseStatus, to: CaseStatus, reason: str, victim: VictimStatus) -> bool:
    try:
        rules.check_requested_transition(status, to, reason, victim_status=victim)
    except IllegalTransition:
        return False
    return True


@settings(deadline=None)
@given(histories)
def test_no_sequence_of_transitions_takes_a_case_through_a_move_the_machine_forbids(
    history: list[tuple[object, ...]],
) -> None:
    status = CaseStatus.identified
    for step in history:
        before = status
        if step[0] == "request":
            _, to, reason, victim = step
            assert isinstance(to, CaseStatus)
            assert isinstance(reason, str)
            assert isinstance(victim, VictimStatus)
            if not _accepts(status, to, reason, victim):
                continue
            status = to
            if before is CaseStatus.closed:
                # Only a reopening leaves a closed case, by a reopening reason.
                assert to in rules.REOPEN_TARGETS
                assert reason in set(ReopeningReason)
            else:
                # A caller only ever closes an open case, by a reason of its state.
                assert to is CaseStatus.closed
                assert reason in rules.CLOSING_REASONS[before]
                assert reason != ClosingReason.repatriated
                assert reason != ClosingReason.not_a_victim or victim is VictimStatus.not_a_victim
        else:
            trigger = step[1]
            assert isinstance(trigger, TransitionTrigger)
            after = rules.status_after(status, trigger)
            if after is None:
                continue
            status = after
            # Events only move a case forward, and never reopen one.
            assert before is not CaseStatus.closed
            if status is CaseStatus.referred:
                assert before is CaseStatus.identified
            if status is CaseStatus.in_care:
                assert before in {CaseStatus.identified, CaseStatus.referred}
        assert status in set(CaseStatus)


@settings(deadline=None)
@given(st.sampled_from(CaseStatus), st.sampled_from(VictimStatus))
def test_allowed_transitions_list_exactly_what_a_caller_may_request(
    status: CaseStatus, victim: VictimStatus
) -> None:
    listed = {
        (str(t["to"]), reason)
        for t in rules.allowed_transitions(status)
        for reason in t["reasons"]  # type: ignore[attr-defined]
    }
    accepted = {
        (to.value, reason)
        for to in CaseStatus
        for reason in REASONS
        if _accepts(status, to, reason, victim)
    }
    # Closing as not_a_victim is listed, and accepted once a screening found so.
    needs_screening = {(CaseStatus.closed.value, ClosingReason.not_a_victim.value)}
    assert accepted <= listed
    assert listed - accepted <= (
        needs_screening if victim is not VictimStatus.not_a_victim else set()
    )


@settings(deadline=None)
@given(st.dates(), st.dates(min_value=date(2020, 1, 1), max_value=date(2100, 1, 1)))
def test_an_identification_day_is_accepted_exactly_from_1990_to_today(
    identified_on: date, today: date
) -> None:
    problem = rules.identified_on_problem(identified_on, today=today)
    assert (problem is None) == (rules.EARLIEST_IDENTIFICATION <= identified_on <= today)
    if identified_on > today:
        assert problem is rules.IdentificationDateProblem.in_future
