"""Persons as submitted at identification, and as shown."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.core.time import today
from service.persons.rules import DocumentType, Gender, MatchKind

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 3166-1 alpha-3")
]


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: DocumentType
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=40)]


class PersonCreate(BaseModel):
    """The person identified: identifying fields are encrypted, the rest kept for statistics."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name | None = None
    family_name: Name | None = None
    document: Document | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    birth_date: date | None = None
    age_estimate: int | None = Field(default=None, ge=0, le=120)
    gender: Gender
    nationality: CountryCode | None = None
    indigenous_people: Annotated[str, StringConstraints(max_length=80)] | None = None
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=list, max_length=10, description="ISO 639 codes, e.g. es, qu, ay"
    )
    lgbti: bool | None = Field(default=None, description="Self-declared; optional")

    @model_validator(mode="after")
    def _age(self) -> Self:
        if self.birth_date is not None and self.age_estimate is not None:
            raise ValueError("give birth_date or age_estimate, not both")
        if self.birth_date is not None and self.birth_date > today():
            raise ValueError("birth_date must not be in the future")
        return self


class PersonIdentifying(BaseModel):
    """The identifying data of a person: returned only to those who may see it, and audited."""

    person_id: uuid.UUID
    given_name: str | None
    family_name: str | None
    document: Document | None
    phone: str | None
    address: str | None
    birth_date: date | None


class PersonFacts(BaseModel):
    """Non-identifying facts of the person, shown with the case."""

    id: uuid.UUID
    age_at_identification: int | None
    age_is_estimate: bool
    minor: bool
    gender: Gender
    nationality: str | None
    indigenous_people: str | None
    languages: list[str]
    lgbti: bool | None


class PossibleDuplicate(BaseModel):
    """An earlier record that may be the same person."""

    person_id: uuid.UUID
    matched_on: MatchKind
    linked: bool = Field(
        description="True when the records were joined as one person (same document);"
        " otherwise a caseworker may link them."
    )


class PersonLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID = Field(description="A candidate from `possible_duplicates`")
