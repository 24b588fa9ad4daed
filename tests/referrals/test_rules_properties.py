"""Properties of referral transitions, over random sequences of actions by either side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.referrals import rules
from service.referrals.rules import IllegalReferralAction, ReferralAction, ReferralStatus, Side

TERMINAL = {
    ReferralStatus.rejected,
    ReferralStatus.completed,
    ReferralStatus.cancelled,
    ReferralStatus.expired,
}
# Every move the lifecycle (FHIR Task) allows; nothing else may ever happen.
LEGAL_MOVES = {
    (ReferralStatus.requested, ReferralStatus.accepted),
    (ReferralStatus.requested, ReferralStatus.rejected),
    (ReferralStatus.requested, ReferralStatus.cancelled),
    (ReferralStatus.requested, ReferralStatus.expired),
    (ReferralStatus.accepted, ReferralStatus.in_progress),
    (ReferralStatus.accepted, ReferralStatus.completed),
    (ReferralStatus.accepted, ReferralStatus.cancelled),
    (ReferralStatus.in_progress, ReferralStatus.completed),
    (ReferralStatus.in_progress, ReferralStatus.cancelled),
}
steps = st.lists(st.tuples(st.sampled_from(ReferralAction), st.sampled_from(Side)), max_size=20)


@settings(deadline=None)
@given(steps)
def test_no_sequence_of_actions_makes_a_move_the_lifecycle_forbids(
    history: list[tuple[ReferralAction, Side]],
) -> None:
    status = ReferralStatus.requested
    for action, side in history:
        allowed = rules.allowed_actions(status, side)
        if action.value not in allowed:
            with pytest.raises(IllegalReferralAction) as refused:
                rules.next_status(status, action, side)
            assert refused.value.allowed == allowed
            continue
        after = rules.next_status(status, action, side)
        assert (status, after) in LEGAL_MOVES
        # The receiver answers and serves; the sender (or Ruta) cancels; only Ruta expires.
        if after in {ReferralStatus.accepted, ReferralStatus.rejected, ReferralStatus.completed}:
            assert side is Side.receiver
        if after is ReferralStatus.cancelled:
            assert side in {Side.sender, Side.system}
        if after is ReferralStatus.expired:
            assert side is Side.system
        status = after


@settings(deadline=None)
@given(st.sampled_from(sorted(TERMINAL)), st.sampled_from(Side))
def test_a_finished_referral_allows_no_action_to_anyone(status: ReferralStatus, side: Side) -> None:
    assert rules.allowed_actions(status, side) == []
