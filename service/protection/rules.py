"""Protection services, custody and non-punishment: pure, no I/O."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from service.alerts.rules import AlertKind
from service.core.dates import Implausible, first, ordered, past_day, past_instant


class AssistanceKind(StrEnum):
    psychological = "psychological"
    medical = "medical"
    social_work = "social_work"
    education = "education"
    employment = "employment"
    documents = "documents"
    reintegration = "reintegration"


class AssistanceOutcome(StrEnum):
    provided = "provided"
    ongoing = "ongoing"
    declined = "declined"
    not_available = "not_available"


class CustodyPlace(StrEnum):
    police_station = "police_station"
    prosecutor_office = "prosecutor_office"
    other = "other"


class PunitiveMeasure(StrEnum):
    arrest = "arrest"
    charge = "charge"
    detention = "detention"
    fine = "fine"
    deportation_order = "deportation_order"


def custody_alerts(place: CustodyPlace, *, minor: bool) -> bool:
    """A child held in a police station is an alert from the first minute."""
    return minor and place is CustodyPlace.police_station


def custody_hours(start: datetime, end: datetime | None, now: datetime) -> float:
    """How long a custody period lasted, or has lasted so far."""
    return ((end or now) - start).total_seconds() / 3600


def custody_escalation_level(
    place: CustodyPlace,
    *,
    minor: bool,
    held: timedelta,
    minor_hours: int,
    adult_hours: int,
) -> int:
    """How many of its limits a custody still running has passed, each one raising its alert
    again: a child in a police station has two (`minor_hours`, then `adult_hours`), anyone
    else held anywhere one (`adult_hours`)."""
    limits = [minor_hours, adult_hours] if custody_alerts(place, minor=minor) else [adult_hours]
    return sum(held > timedelta(hours=limit) for limit in limits)


def custody_alert_kind(place: CustodyPlace, *, minor: bool) -> AlertKind:
    """The alert a custody period raises: a child's in a police station from the first
    minute, anyone else's once held past the long limit."""
    return (
        AlertKind.minor_in_custody if custody_alerts(place, minor=minor) else AlertKind.long_custody
    )


def assistance_day_problem(provided_on: date, *, today: date) -> Implausible | None:
    """Assistance is recorded once given: not in the future, not before 1990."""
    return past_day("provided_on", provided_on, today=today)


def custody_problem(start: datetime, end: datetime | None, *, now: datetime) -> Implausible | None:
    """A custody period has begun (give or take a client's clock), not before 1990, and
    ends neither in the future nor before it began."""
    return first(
        past_instant("start", start, now=now),
        None if end is None else past_instant("end", end, now=now),
        None if end is None else ordered("start", start, "end", end),
    )


def non_punishment_day_problem(occurred_on: date, *, today: date) -> Implausible | None:
    """A punitive measure already taken: not in the future, not before 1990."""
    return past_day("occurred_on", occurred_on, today=today)
