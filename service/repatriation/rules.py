"""Asylum, residency and repatriation: pure, no I/O.

Non-refoulement: a foreign national is not returned to her country while her asylum claim is
pending or recognized. The latest claim decides (`current`), by the day it took effect and
then by when it was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from service.core.dates import Implausible, first, past_day, planned_day
from service.persons.rules import PERU


class AsylumClaimStatus(StrEnum):
    none = "none"
    pending = "pending"
    recognized = "recognized"
    rejected = "rejected"


class ResidencyStatus(StrEnum):
    none = "none"
    temporary = "temporary"
    permanent = "permanent"


class RepatriationDirection(StrEnum):
    """A Peruvian exploited abroad coming home, or a foreign national going back."""

    to_peru = "to_peru"
    to_country_of_origin = "to_country_of_origin"


class RepatriationStatus(StrEnum):
    planned = "planned"
    arrived = "arrived"
    cancelled = "cancelled"


class CancelReason(StrEnum):
    """Why a planned repatriation did not happen. Ruta sets the last three itself:
    `asylum_claim` when a pending or recognized claim is recorded while a return is planned,
    `case_closed` when the case closes before the journey, `consent_withdrawn` when the
    person withdraws or refuses the consent a return to her country needs."""

    person_declined = "person_declined"
    travel_not_possible = "travel_not_possible"
    recorded_in_error = "recorded_in_error"
    asylum_claim = "asylum_claim"
    case_closed = "case_closed"
    consent_withdrawn = "consent_withdrawn"


# While the latest claim is one of these, a return to the country of origin is refoulement.
PROTECTED_CLAIMS = frozenset({AsylumClaimStatus.pending, AsylumClaimStatus.recognized})


class Dated(Protocol):
    @property
    def effective_on(self) -> date: ...

    @property
    def recorded_at(self) -> datetime: ...


D = TypeVar("D", bound=Dated)


def current(history: Iterable[D]) -> D | None:
    """The entry in force: the latest effective_on, then the latest recorded."""
    return max(history, key=lambda e: (e.effective_on, e.recorded_at), default=None)


def return_is_refoulement(claim: AsylumClaimStatus | None) -> bool:
    """Whether returning the person to her country would breach non-refoulement."""
    return claim in PROTECTED_CLAIMS


def to_peru_error(*, nationality: str | None, exploitation_countries: list[str]) -> str | None:
    """Why a repatriation to Peru does not fit this person, or None when it does."""
    if nationality != PERU:
        return "a repatriation to Peru is for a Peruvian national"
    if not exploitation_countries:
        return "no identification of this case names a country of exploitation abroad"
    return None


def to_peru_country_error(country: str, exploitation_countries: list[str]) -> str | None:
    """A repatriation to Peru comes from a country where the person was exploited."""
    if country not in exploitation_countries:
        return (
            f"{country} is not a country of exploitation of this case"
            f" ({', '.join(sorted(set(exploitation_countries)))})"
        )
    return None


# A repatriation is planned weeks ahead, not years.
PLANNING_HORIZON = timedelta(days=366)


def status_day_problem(effective_on: date, *, today: date) -> Implausible | None:
    """An asylum or residency status already in effect: not in the future, not before 1990."""
    return past_day("effective_on", effective_on, today=today)


def travel_day_problem(travel_on: date, *, today: date) -> Implausible | None:
    """A planned journey: at most a year ahead, not before 1990."""
    return planned_day("travel_on", travel_on, today=today, ahead=PLANNING_HORIZON)


def arrival_days_problem(
    arrived_on: date, travelled_on: date | None, *, today: date
) -> Implausible | None:
    """An arrival, and the journey that led to it, have happened (not before 1990)."""
    return first(
        past_day("arrived_on", arrived_on, today=today),
        None if travelled_on is None else past_day("travelled_on", travelled_on, today=today),
    )
