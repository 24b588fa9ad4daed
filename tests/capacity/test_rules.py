"""Eligibility, choice and priority, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from service.capacity.rules import (
    FacilityView,
    Needs,
    PlacementOutcome,
    UnmetReason,
    WaitlistEntry,
    choose_facility,
    priority,
    region_distance,
)


def facility(
    code: str, region: str = "15", kind: str = "specialized_shelter", **kw: object
) -> FacilityView:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "code": code,
        "region": region,
        "kind": kind,
        "status": "open",
        "capacity": 10,
        "in_use": 0,
        "min_age": 0,
        "max_age": 120,
        "genders": frozenset({"female"}),
        "exploitation_forms": frozenset(),
        "lgbti_specialized": False,
    }
    values.update(kw)
    return FacilityView(**values)  # type: ignore[arg-type]


WOMAN = Needs(age=30, gender="female", exploitation=frozenset({"sexual_exploitation"}), region="17")


def test_adult_man_is_an_unmet_need_named_as_such() -> None:
    man = Needs(age=40, gender="male", exploitation=frozenset({"forced_labour"}), region="17")
    choice = choose_facility(
        man,
        [
            facility("A"),
            facility("CAR", min_age=0, max_age=17, genders=frozenset({"female", "male"})),
        ],
    )
    assert choice.outcome is PlacementOutcome.unmet_need
    assert choice.unmet_reason is UnmetReason.no_facility_for_adult_men


def test_a_child_never_goes_to_an_adult_only_facility() -> None:
    child = Needs(
        age=15, gender="female", exploitation=frozenset({"sexual_exploitation"}), region="17"
    )
    adults = facility("ADULTS", region="17", min_age=18)
    car = facility("CAR", region="08", kind="children_residential_centre", max_age=17)
    choice = choose_facility(child, [adults, car])
    assert choice.facility_id == car.id
    assert choice.considered["ADULTS"] == ["age"]


def test_unknown_age_is_protected_as_a_child() -> None:
    unknown = Needs(age=None, gender="female", exploitation=frozenset(), region="15")
    choice = choose_facility(unknown, [facility("ADULTS", min_age=12)])
    assert choice.outcome is PlacementOutcome.unmet_need


def test_same_region_then_specialized_then_nearest() -> None:
    near_general = facility("NEAR", region="08", kind="ngo_shelter")
    far_specialized = facility("FAR", region="15")
    same_general = facility("SAME", region="17", kind="ngo_shelter")
    assert (
        choose_facility(WOMAN, [near_general, far_specialized, same_general]).facility_id
        == same_general.id
    )
    specialized_near = facility("SPEC-NEAR", region="21")
    assert (
        choose_facility(WOMAN, [near_general, far_specialized, specialized_near]).facility_id
        == specialized_near.id
    )
    assert region_distance("17", "08") == 1
    assert region_distance("17", "15") > 1


def test_full_eligible_facilities_mean_the_waitlist() -> None:
    choice = choose_facility(WOMAN, [facility("FULL", in_use=10)])
    assert choice.outcome is PlacementOutcome.waitlisted
    assert choice.eligible == ("FULL",)


def test_lgbti_specialized_need_without_service_is_named() -> None:
    needs = Needs(
        age=25, gender="female", exploitation=frozenset(), region="15", lgbti_specialized=True
    )
    assert (
        choose_facility(needs, [facility("A")]).unmet_reason
        is UnmetReason.no_lgbti_specialized_service
    )


def _entry(minor: bool, risk_level: int, requested_at: datetime) -> WaitlistEntry:
    return WaitlistEntry(
        id=uuid.uuid4(), minor=minor, risk_level=risk_level, requested_at=requested_at
    )


def test_priority_children_then_risk_then_time() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    queue = sorted(
        [
            ("adult low early", priority(_entry(False, 1, t))),
            (
                "adult high late",
                priority(_entry(False, 3, t + timedelta(hours=2))),
            ),
            (
                "child low latest",
                priority(_entry(True, 0, t + timedelta(hours=5))),
            ),
            (
                "adult low later",
                priority(_entry(False, 1, t + timedelta(hours=1))),
            ),
        ],
        key=lambda item: item[1],
    )
    assert [name for name, _ in queue] == [
        "child low latest",
        "adult high late",
        "adult low early",
        "adult low later",
    ]


def test_a_facility_restricted_by_nationality_takes_only_those_nationals() -> None:
    venezuelans_only = facility("VEN-ONLY", nationalities=frozenset({"VEN"}))
    peruvian = Needs(
        age=30, gender="female", exploitation=frozenset(), region="15", nationality="PER"
    )
    venezuelan = Needs(
        age=30, gender="female", exploitation=frozenset(), region="15", nationality="VEN"
    )
    assert choose_facility(peruvian, [venezuelans_only]).considered["VEN-ONLY"] == ["nationality"]
    assert choose_facility(venezuelan, [venezuelans_only]).facility_id == venezuelans_only.id
