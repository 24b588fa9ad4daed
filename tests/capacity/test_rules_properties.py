"""Properties of eligibility, the choice of a bed and the waitlist order, over random needs,
facilities and waitlists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from service.capacity import rules
from service.capacity.rules import FacilityStatus, FacilityView, Needs, PlacementOutcome
from service.cases.rules import ExploitationForm
from service.persons.rules import Gender

REGIONS = sorted({r for pair in rules.REGION_BORDERS for r in pair})
FORMS = [f.value for f in ExploitationForm]
GENDERS = [g.value for g in Gender]
COUNTRIES = ["PER", "VEN", "COL", "ECU", "BOL"]

needs = st.builds(
    Needs,
    age=st.none() | st.integers(min_value=0, max_value=120),
    gender=st.sampled_from(GENDERS),
    exploitation=st.frozensets(st.sampled_from(FORMS), min_size=1, max_size=3),
    region=st.sampled_from(REGIONS),
    lgbti_specialized=st.booleans(),
    nationality=st.none() | st.sampled_from(COUNTRIES),
)


@st.composite
def facilities(draw: st.DrawFn) -> FacilityView:
    low = draw(st.integers(min_value=0, max_value=120))
    high = draw(st.integers(min_value=low, max_value=120))
    capacity = draw(st.integers(min_value=0, max_value=5))
    return FacilityView(
        id=draw(st.uuids(version=4)),
        code=f"F-{draw(st.integers(min_value=0, max_value=10**6))}",
        region=draw(st.sampled_from(REGIONS)),
        kind=draw(st.sampled_from([k.value for k in rules.FacilityKind])),
        status=draw(st.sampled_from([s.value for s in FacilityStatus])),
        capacity=capacity,
        in_use=draw(st.integers(min_value=0, max_value=capacity)),
        min_age=low,
        max_age=high,
        genders=draw(st.frozensets(st.sampled_from(GENDERS), max_size=2)),
        exploitation_forms=draw(st.frozensets(st.sampled_from(FORMS), max_size=3)),
        lgbti_specialized=draw(st.booleans()),
        nationalities=draw(st.frozensets(st.sampled_from(COUNTRIES), max_size=2)),
    )


def _within_population(person: Needs, facility: FacilityView) -> bool:
    """The facility's declared population, written out independently of the rule."""
    if person.age is None:
        ages_ok = facility.min_age == 0
    else:
        ages_ok = facility.min_age <= person.age <= facility.max_age
    return (
        facility.status == FacilityStatus.open
        and ages_ok
        and (not facility.genders or person.gender in facility.genders)
        and (
            not facility.exploitation_forms
            or bool(person.exploitation & facility.exploitation_forms)
        )
        and (facility.lgbti_specialized or not person.lgbti_specialized)
        and (not facility.nationalities or person.nationality in facility.nationalities)
    )


@settings(deadline=None)
@given(needs, facilities())
def test_eligibility_never_admits_a_person_outside_the_declared_population(
    person: Needs, facility: FacilityView
) -> None:
    assert (rules.ineligibility(person, facility) == []) == _within_population(person, facility)


@settings(deadline=None)
@given(needs, st.lists(facilities(), max_size=8, unique_by=lambda f: f.code))
def test_a_bed_is_chosen_only_in_an_eligible_facility_with_one_free(
    person: Needs, candidates: list[FacilityView]
) -> None:
    choice = rules.choose_facility(person, candidates)
    eligible = [f for f in candidates if _within_population(person, f)]
    if choice.outcome is PlacementOutcome.placed:
        [chosen] = [f for f in candidates if f.id == choice.facility_id]
        assert _within_population(person, chosen)
        assert chosen.free > 0
        # No eligible facility with a bed is preferred to the one chosen.
        assert all(
            rules.preference(person, chosen) <= rules.preference(person, f)
            for f in eligible
            if f.free > 0
        )
    elif choice.outcome is PlacementOutcome.waitlisted:
        assert eligible
        assert all(f.free == 0 for f in eligible)
        assert choice.facility_id is None
    else:
        assert choice.outcome is PlacementOutcome.unmet_need
        assert not eligible
        assert choice.unmet_reason is not None


BASE = datetime(2016, 6, 14, 8, 0, tzinfo=UTC)
entries = st.builds(
    rules.WaitlistEntry,
    id=st.uuids(version=4),
    minor=st.booleans(),
    risk_level=st.integers(min_value=0, max_value=3),
    requested_at=st.integers(min_value=0, max_value=5).map(lambda m: BASE + timedelta(minutes=m)),
)


def _comes_first(a: rules.WaitlistEntry, b: rules.WaitlistEntry) -> bool:
    """Children first, then higher risk, then longest waiting, then the id: written out."""
    if a.minor != b.minor:
        return a.minor
    if a.risk_level != b.risk_level:
        return a.risk_level > b.risk_level
    if a.requested_at != b.requested_at:
        return a.requested_at < b.requested_at
    return a.id < b.id


@settings(deadline=None)
@given(entries, entries)
def test_the_waitlist_order_is_total_and_follows_priority_then_arrival(
    a: rules.WaitlistEntry, b: rules.WaitlistEntry
) -> None:
    if a.id == b.id:
        b = rules.WaitlistEntry(uuid.uuid4(), b.minor, b.risk_level, b.requested_at)
    # Distinct requests never tie, and exactly one of them comes first.
    assert rules.priority(a) != rules.priority(b)
    assert (rules.priority(a) < rules.priority(b)) == _comes_first(a, b)
    assert (rules.priority(b) < rules.priority(a)) == _comes_first(b, a)


@settings(deadline=None)
@given(st.lists(entries, min_size=1, max_size=30, unique_by=lambda e: e.id))
def test_sorting_a_waitlist_puts_every_request_before_those_it_outranks(
    waitlist: list[rules.WaitlistEntry],
) -> None:
    ordered = sorted(waitlist, key=rules.priority)
    for i, earlier in enumerate(ordered):
        for later in ordered[i + 1 :]:
            assert _comes_first(earlier, later)
