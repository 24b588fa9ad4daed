"""The case state machine and referral suggestions, without I/O."""

from __future__ import annotations

import pytest

from service.cases import rules
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


def test_reintegration_only_closes_cases_in_care() -> None:
    for status, reasons in CLOSING_REASONS.items():
        assert (ClosingReason.reintegrated in reasons) == (status is CaseStatus.in_care)


@pytest.mark.parametrize("status", [CaseStatus.identified, CaseStatus.referred, CaseStatus.in_care])
def test_no_caller_closes_a_case_as_repatriated(status: CaseStatus) -> None:
    with pytest.raises(IllegalTransition, match="arrival of its repatriation"):
        check_requested_transition(
            status, CaseStatus.closed, "repatriated", victim_status=VictimStatus.confirmed
        )


@pytest.mark.parametrize("status", [CaseStatus.identified, CaseStatus.referred, CaseStatus.in_care])
def test_an_arrival_home_closes_an_open_case_as_repatriated(status: CaseStatus) -> None:
    assert status_after(status, TransitionTrigger.repatriated) is CaseStatus.closed
    assert rules.TRIGGER_REASONS[TransitionTrigger.repatriated] is ClosingReason.repatriated


def test_an_arrival_home_leaves_a_closed_case_alone() -> None:
    assert status_after(CaseStatus.closed, TransitionTrigger.repatriated) is None


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


def test_place_of_exploitation_is_one_region_or_one_foreign_country() -> None:
    check = rules.place_of_exploitation_error
    ctx = rules.IdentificationContext
    assert check(region="17", country=None, context=ctx.police_operation) is None
    assert check(region=None, country="ARG", context=ctx.consulate_abroad) is None
    assert check(region=None, country="CHL", context=ctx.police_operation) is None
    assert check(region=None, country=None, context=ctx.other) == (
        "region",
        "give the region of Peru where the exploitation took place,"
        " or exploitation_country when it was abroad",
    )
    for region, country, context in [
        ("17", "ARG", ctx.consulate_abroad),
        (None, "PER", ctx.consulate_abroad),
        ("15", None, ctx.consulate_abroad),
    ]:
        error = check(region=region, country=country, context=context)
        assert error is not None
        assert error[0] == "exploitation_country"


def test_route_legs_keep_the_order_and_the_roles() -> None:
    legs = rules.route_legs(origin="PER", transit=["BOL", "PRY"], destination="ARG")
    assert legs == [
        ("PER", rules.RouteRole.origin),
        ("BOL", rules.RouteRole.transit),
        ("PRY", rules.RouteRole.transit),
        ("ARG", rules.RouteRole.destination),
    ]
    assert rules.route_legs(origin=None, transit=[], destination=None) == []


def test_placement_region_is_the_latest_region_else_the_identifiers_else_lima() -> None:
    assert rules.placement_region(["17", None, "08"], identifier_region="15") == "08"
    assert rules.placement_region(["17", None], identifier_region="15") == "17"
    assert rules.placement_region([None], identifier_region="21") == "21"
    assert rules.placement_region([None, None], identifier_region=None) == "15"
    assert rules.ARRIVAL_REGION == "15"


def test_placement_region_is_first_where_a_repatriation_to_peru_arrives() -> None:
    assert rules.placement_region([None], identifier_region="15", repatriation_region="20") == "20"
    assert rules.placement_region(["17"], identifier_region=None, repatriation_region="04") == "04"
