"""Normalizing what identifies a person, and ages: pure, no I/O."""

from __future__ import annotations

import re
import unicodedata
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


def age_now(age_at_identification: int | None, identified_on: date, today: date) -> int | None:
    """Age today, from the age at identification (whole years elapsed since); None if unknown."""
    if age_at_identification is None:
        return None
    return age_at_identification + (today - identified_on).days // 365


def is_minor(age_at_identification: int | None, identified_on: date, today: date) -> bool:
    """Whether the person is (conservatively) still under 18 today; unknown age counts as minor."""
    age = age_now(age_at_identification, identified_on, today)
    return age is None or age < ADULT_AGE


def is_foreign(nationality: str | None) -> bool:
    return nationality is not None and nationality != PERU
