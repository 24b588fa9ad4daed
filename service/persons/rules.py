"""Normalizing what identifies a person, and ages: pure, no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class DocumentType(StrEnum):
    dni = "dni"  # Peruvian national identity document
    passport = "passport"
    foreign_resident_card = "foreign_resident_card"  # carné de extranjería
    cedula = "cedula"  # identity card of another country (Venezuela, Colombia, Ecuador ...)
    birth_certificate = "birth_certificate"
    other = "other"


class Gender(StrEnum):
    female = "female"
    male = "male"
    non_binary = "non_binary"
    unknown = "unknown"


class MatchKind(StrEnum):
    document = "document"
    name_and_birth_date = "name_and_birth_date"


ADULT_AGE = 18
PERU = "PER"


def normalize_document(doc_type: str, number: str) -> str:
    """Type and number, upper-case alphanumerics only: 'dni:04512345'."""
    return f"{doc_type}:{re.sub(r'[^0-9A-Z]', '', number.upper())}"


def normalize_name(name: str) -> str:
    """Case-, accent- and spacing-insensitive form of a name."""
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z ]", " ", letters.casefold()).split())


def name_and_birth_date_key(given_name: str, family_name: str, birth_date: date) -> str:
    return f"{normalize_name(given_name)}|{normalize_name(family_name)}|{birth_date.isoformat()}"


def age_on(birth_date: date, day: date) -> int:
    """Completed years on a day."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _years_before(day: date, years: int) -> date:
    """The same day `years` earlier (28 February for a 29th in a common year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class StoredAge:
    """What is kept of a person's age: the age at the identification that first recorded
    them, whether it was estimated, the birth year when a birth date was given, and the day
    of that identification."""

    age_at_identification: int | None
    age_is_estimate: bool
    birth_year: int | None
    identified_on: date


def age_on_date(stored: StoredAge, on: date) -> int | None:
    """The person's age in completed years on a day. Where the records leave the birthday
    open, the youngest age they allow, so that nobody who may have been a child is taken for
    an adult. None when the age is unknown."""
    if stored.age_at_identification is None:
        return None
    # The latest birth date that gives this age on the identification day.
    latest_birth = _years_before(stored.identified_on, stored.age_at_identification)
    if stored.birth_year is not None and not stored.age_is_estimate:
        latest_birth = min(latest_birth, date(stored.birth_year, 12, 31))
    return max(0, age_on(latest_birth, on))


def minor_on_date(stored: StoredAge, on: date) -> bool:
    """Whether the person was (or may have been) under 18 on a day; unknown age counts as a
    child."""
    age = age_on_date(stored, on)
    return age is None or age < ADULT_AGE


def is_foreign(nationality: str | None) -> bool:
    return nationality is not None and nationality != PERU


class BirthDateProblem(StrEnum):
    in_future = "birth_date_in_future"
    after_identification = "birth_date_after_identification"
    too_early = "birth_date_too_early"


# The oldest age Ruta takes (as for an estimate): a birth further back is a typing error.
MAX_AGE = 120


def birth_date_problem(
    birth_date: date, *, identified_on: date, today: date
) -> BirthDateProblem | None:
    """Why a birth date cannot be true of a person identified on a day, or None."""
    if birth_date > today:
        return BirthDateProblem.in_future
    if birth_date > identified_on:
        return BirthDateProblem.after_identification
    if birth_date < _years_before(identified_on, MAX_AGE):
        return BirthDateProblem.too_early
    return None


class ErasureBasis(StrEnum):
    """Why a person's identifying data was erased (Peru's Ley 29733 on personal data)."""

    # The person exercised her right to erasure (supresión, art. 20).
    data_subject_request = "data_subject_request"
    court_order = "court_order"
    # Recorded by mistake: the wrong person, a test, a duplicate entered in error.
    recorded_in_error = "recorded_in_error"
    # The case was closed longer than its retention period (`ruta retention run`).
    retention_period_ended = "retention_period_ended"
    # Found without a data key by migration 0024: erased by hand before erasures were recorded.
    unrecorded = "unrecorded"


# The bases an administrator may give through the API; the others are the system's.
REQUESTABLE_ERASURE_BASES = (
    ErasureBasis.data_subject_request,
    ErasureBasis.court_order,
    ErasureBasis.recorded_in_error,
)
