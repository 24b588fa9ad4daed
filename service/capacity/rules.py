"""Facilities, eligibility, the choice of a bed and waitlist priority: pure, no I/O.

The API and the capacity simulation share these rules. RULE_VERSION is stored with every
allocation decision, so a decision can be explained with the rules that made it.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from service.core.dates import EARLIEST_INSTANT, DateProblem, Implausible
from service.persons.rules import Gender

RULE_VERSION = "placement/2026-11-28.2"
ADULT_AGE = 18
SPECIALIZED_KINDS = frozenset({"specialized_shelter"})


class FacilityKind(StrEnum):
    specialized_shelter = "specialized_shelter"
    children_residential_centre = "children_residential_centre"
    ngo_shelter = "ngo_shelter"
    transit = "transit"


class FacilityStatus(StrEnum):
    open = "open"
    temporarily_closed = "temporarily_closed"
    closed = "closed"


class PlacementStatus(StrEnum):
    held = "held"
    placed = "placed"
    ended = "ended"
    expired = "expired"


class PlacementOutcome(StrEnum):
    placed = "placed"
    held = "held"
    waitlisted = "waitlisted"
    unmet_need = "unmet_need"


class UnmetReason(StrEnum):
    no_facility_for_adult_men = "no_facility_for_adult_men"
    no_lgbti_specialized_service = "no_lgbti_specialized_service"
    no_facility_for_age = "no_facility_for_age"
    no_facility_for_exploitation_form = "no_facility_for_exploitation_form"
    no_eligible_facility = "no_eligible_facility"
    waited_too_long = "waited_too_long"


class EndReason(StrEnum):
    discharged = "discharged"
    transferred = "transferred"
    case_closed = "case_closed"


class RequestStatus(StrEnum):
    """A waiting request's lifecycle: it waits, then is placed, withdrawn or expires."""

    waiting = "waiting"
    placed = "placed"
    withdrawn = "withdrawn"
    expired = "expired"


class WithdrawReason(StrEnum):
    # given by a caseworker
    no_longer_needed = "no_longer_needed"
    declined_by_person = "declined_by_person"
    placed_elsewhere = "placed_elsewhere"
    # decided by Ruta
    placed_directly = "placed_directly"
    case_closed = "case_closed"
    already_placed = "already_placed"
    duplicate_request = "duplicate_request"


class PlacementRefusal(StrEnum):
    """Why a request for a bed is refused before any bed is sought."""

    # The caller's organization neither operates the named facility nor holds an accepted
    # shelter referral for the case (an identifying police unit, on its own, places nobody).
    not_entitled = "not_entitled"
    # An adult's placement needs her consent in force naming `services`.
    consent_required = "consent_required"


def placement_refusal(
    *,
    facility_named: bool,
    operates_facility: bool,
    holds_shelter_referral: bool,
    minor: bool,
    consents_to_services: bool,
) -> PlacementRefusal | None:
    """Whether the caller may ask for this bed: beds are allocated by the organizations that
    run them (for their own facility) or that accepted a shelter referral (for any facility,
    or a search of the country). An adult is placed only with her consent to services; a
    child (or a person of unknown age) may be placed without it, as the State's protection
    of a child in danger, but still only by such an organization."""
    if not (holds_shelter_referral or (facility_named and operates_facility)):
        return PlacementRefusal.not_entitled
    if not minor and not consents_to_services:
        return PlacementRefusal.consent_required
    return None


def manages_placement(*, operates_facility: bool, holds_shelter_referral: bool) -> bool:
    """Whether the caller may confirm an arrival in, or end, a placement: the organizations
    that may allocate the bed (`placement_refusal`), the facility's operator and one that
    accepted a shelter referral of the case, and no one else (the identifying police refer
    the person; they neither discharge nor admit her)."""
    return operates_facility or holds_shelter_referral


def available_beds(*, capacity: int, in_use: int, status: str) -> int:
    """Beds free to place someone in now: capacity less beds placed or held; 0 unless open.

    The one formula behind the facility list and detail, the capacity summary, the HSDS
    export and the dated history (where `in_use` is occupied plus held at that moment)."""
    return max(capacity - in_use, 0) if status == FacilityStatus.open else 0


# Shared borders between Peru's departments (INEI ubigeo codes); Callao (07) borders Lima.
REGION_BORDERS: tuple[tuple[str, str], ...] = (
    ("01", "06"),
    ("01", "13"),
    ("01", "16"),
    ("01", "22"),
    ("02", "10"),
    ("02", "13"),
    ("02", "15"),
    ("03", "04"),
    ("03", "05"),
    ("03", "08"),
    ("04", "05"),
    ("04", "08"),
    ("04", "11"),
    ("04", "18"),
    ("04", "21"),
    ("05", "08"),
    ("05", "09"),
    ("05", "11"),
    ("05", "12"),
    ("06", "13"),
    ("06", "14"),
    ("06", "20"),
    ("07", "15"),
    ("08", "12"),
    ("08", "17"),
    ("08", "21"),
    ("08", "25"),
    ("09", "11"),
    ("09", "12"),
    ("09", "15"),
    ("10", "13"),
    ("10", "15"),
    ("10", "16"),
    ("10", "19"),
    ("10", "22"),
    ("10", "25"),
    ("11", "15"),
    ("12", "15"),
    ("12", "19"),
    ("12", "25"),
    ("13", "14"),
    ("13", "22"),
    ("14", "20"),
    ("15", "19"),
    ("16", "22"),
    ("16", "25"),
    ("17", "21"),
    ("17", "25"),
    ("18", "21"),
    ("18", "23"),
    ("19", "25"),
    ("20", "24"),
    ("21", "23"),
)


def _neighbours() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in REGION_BORDERS:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set()).add(a)
    return graph


NEIGHBOURS = _neighbours()


def region_distance(a: str, b: str) -> int:
    """How many borders separate two departments (0 for the same one)."""
    if a == b:
        return 0
    seen, queue = {a}, deque([(a, 0)])
    while queue:
        here, hops = queue.popleft()
        for nxt in NEIGHBOURS.get(here, ()):
            if nxt == b:
                return hops + 1
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, hops + 1))
    return 99


@dataclass(frozen=True)
class Needs:
    """What the person needs of a bed: nothing identifying."""

    age: int | None
    gender: str
    exploitation: frozenset[str]
    region: str
    lgbti_specialized: bool = False
    nationality: str | None = None

    @property
    def minor(self) -> bool:
        return self.age is None or self.age < ADULT_AGE  # unknown age is protected as a child


@dataclass(frozen=True)
class FacilityView:
    """A facility as the rules see it."""

    id: uuid.UUID
    code: str
    region: str
    kind: str
    status: str
    capacity: int
    in_use: int
    min_age: int
    max_age: int
    genders: frozenset[str]
    exploitation_forms: frozenset[str]
    lgbti_specialized: bool
    nationalities: frozenset[str] = frozenset()

    @property
    def free(self) -> int:
        return available_beds(capacity=self.capacity, in_use=self.in_use, status=self.status)


def ineligibility(needs: Needs, facility: FacilityView) -> list[str]:
    """Why the facility cannot take this person ([] when it can, capacity aside)."""
    reasons = []
    if facility.status != FacilityStatus.open:
        reasons.append("not_open")
    if needs.age is None:
        if facility.min_age > 0:  # unknown age: only facilities that take young children too
            reasons.append("age")
    elif not facility.min_age <= needs.age <= facility.max_age:
        reasons.append("age")
    if facility.genders and needs.gender not in facility.genders:
        reasons.append("gender")
    if facility.exploitation_forms and not needs.exploitation & facility.exploitation_forms:
        reasons.append("exploitation_form")
    if needs.lgbti_specialized and not facility.lgbti_specialized:
        reasons.append("lgbti_specialized")
    if facility.nationalities and needs.nationality not in facility.nationalities:
        reasons.append("nationality")
    return reasons


def unmet_reason(needs: Needs, facilities: Iterable[FacilityView]) -> UnmetReason:
    """Name the gap when no open facility in the country can take the person."""
    open_ones = [f for f in facilities if f.status == FacilityStatus.open]
    if (
        not needs.minor
        and needs.gender == Gender.male
        and not any(
            "gender" not in ineligibility(needs, f) and "age" not in ineligibility(needs, f)
            for f in open_ones
        )
    ):
        return UnmetReason.no_facility_for_adult_men
    if needs.lgbti_specialized and not any(f.lgbti_specialized for f in open_ones):
        return UnmetReason.no_lgbti_specialized_service
    if not any("age" not in ineligibility(needs, f) for f in open_ones):
        return UnmetReason.no_facility_for_age
    if not any("exploitation_form" not in ineligibility(needs, f) for f in open_ones):
        return UnmetReason.no_facility_for_exploitation_form
    return UnmetReason.no_eligible_facility


def preference(needs: Needs, facility: FacilityView) -> tuple[int, int, int, str]:
    """Same region first, then specialized before general, then nearest."""
    return (
        0 if facility.region == needs.region else 1,
        0 if facility.kind in SPECIALIZED_KINDS else 1,
        region_distance(needs.region, facility.region),
        facility.code,
    )


@dataclass(frozen=True)
class Choice:
    """The rules' answer for one request, with what was considered and why."""

    outcome: PlacementOutcome
    facility_id: uuid.UUID | None = None
    unmet_reason: UnmetReason | None = None
    eligible: tuple[str, ...] = ()
    considered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def why(self) -> str:
        if self.outcome is PlacementOutcome.unmet_need:
            return f"no open facility in the country is eligible ({self.unmet_reason})"
        if self.outcome is PlacementOutcome.waitlisted:
            return f"eligible facilities are full: {', '.join(self.eligible)}"
        return "eligible with a free bed; same region, then specialized, then nearest"


def choose_facility(needs: Needs, facilities: Sequence[FacilityView]) -> Choice:
    """Place, waitlist or record an unmet need, by the rules above.

    `facilities` are those the request may go to: every facility in the country, or the one
    a caller asked for (whose eligibility the caller has checked).
    """
    considered = {f.code: ineligibility(needs, f) for f in facilities}
    eligible = [f for f in facilities if not considered[f.code]]
    if not eligible:
        return Choice(
            PlacementOutcome.unmet_need,
            unmet_reason=unmet_reason(needs, facilities),
            considered=considered,
        )
    codes = tuple(f.code for f in sorted(eligible, key=lambda f: preference(needs, f)))
    with_bed = sorted((f for f in eligible if f.free > 0), key=lambda f: preference(needs, f))
    if not with_bed:
        return Choice(PlacementOutcome.waitlisted, eligible=codes, considered=considered)
    return Choice(
        PlacementOutcome.placed, facility_id=with_bed[0].id, eligible=codes, considered=considered
    )


@dataclass(frozen=True)
class WaitlistEntry:
    """What the waitlist order looks at: nothing identifying."""

    id: uuid.UUID
    minor: bool
    risk_level: int
    requested_at: datetime


# The waitlist order, the one definition: children first, then higher risk, then longest
# waiting, then the request id (so the order is total). Each pair is (attribute, descending).
# `priority` below and the SQL that production runs (capacity/service/waitlist.py) are both
# built from it; a property test checks they agree on random waitlists.
WAITLIST_ORDER: tuple[tuple[str, bool], ...] = (
    ("minor", True),
    ("risk_level", True),
    ("requested_at", False),
    ("id", False),
)


def priority(entry: WaitlistEntry) -> tuple[Any, ...]:
    """The sort key of a waiting request: smaller comes first."""
    key: list[Any] = []
    for name, descending in WAITLIST_ORDER:
        value = getattr(entry, name)
        key.append(-int(value) if descending else value)
    return tuple(key)


def as_of_problem(as_of: datetime) -> Implausible | None:
    """A moment of the capacity history: none before 1990."""
    if as_of < EARLIEST_INSTANT:
        return Implausible("as_of", DateProblem.too_early, "must not be before 1990-01-01")
    return None
