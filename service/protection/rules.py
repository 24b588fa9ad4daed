"""Protection services, custody and non-punishment: pure, no I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


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
