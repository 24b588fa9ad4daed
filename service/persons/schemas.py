"""Persons as submitted at identification, and as shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from service.core.schemas import CountryCode as CountryCode
from service.core.schemas import (
    Date,
    Id,
    LanguageCode,
    Lax,
    RequestModel,
    WholeNumber,
    multi_line,
    single_line,
)
from service.persons.rules import DocumentType, ErasureBasis, Gender, MatchKind

PersonName = Annotated[str, single_line(120)]


class Document(RequestModel):
    type: Annotated[DocumentType, Lax]
    number: Annotated[str, single_line(40, min_length=3), Field(description="As written on it")]


class PersonCreate(RequestModel):
    """The person identified: identifying fields are encrypted, the rest kept for statistics."""

    given_name: PersonName | None = None
    family_name: PersonName | None = None
    document: Document | None = None
    phone: Annotated[str, single_line(40)] | None = None
    address: Annotated[str, single_line(300)] | None = None
    # Its plausibility (not in the future, not after the identification, not before
    # 1900) is the identification's rule: see persons.rules.birth_date_error.
    birth_date: Date | None = None
    age_estimate: Annotated[int, Field(ge=0, le=120), WholeNumber] | None = None
    gender: Annotated[Gender, Lax]
    nationality: CountryCode | None = None
    indigenous_people: Annotated[str, single_line(80)] | None = None
    languages: list[LanguageCode] = Field(
        default_factory=list, max_length=10, description="ISO 639 codes, e.g. es, qu, ay"
    )
    lgbti: bool | None = Field(default=None, description="Self-declared; optional")

    @model_validator(mode="after")
    def _age(self) -> Self:
        if self.birth_date is not None and self.age_estimate is not None:
            raise ValueError("give birth_date or age_estimate, not both")
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


class PersonLink(RequestModel):
    person_id: Id = Field(description="A candidate from `possible_duplicates`")


class RequestedErasureBasis(StrEnum):
    """The legal bases an administrator may erase a person on (persons.rules.ErasureBasis)."""

    data_subject_request = ErasureBasis.data_subject_request.value
    court_order = ErasureBasis.court_order.value
    recorded_in_error = ErasureBasis.recorded_in_error.value


class ErasureRequest(RequestModel):
    """Why a person is erased. The justification is kept only as a keyed digest: it cannot
    be read back, so even one that names the person does not survive the erasure."""

    legal_basis: Annotated[RequestedErasureBasis, Lax]
    justification: Annotated[str, multi_line(2000, min_length=10)] = Field(
        description="Why, with the reference of the request or order (kept on paper or in the"
        " document system). Stored only as a keyed digest that proves later which text was"
        " given; do not write the person's name."
    )


class ErasurePublic(BaseModel):
    """That a person was erased: the same answer however often it is asked."""

    person_id: uuid.UUID
    legal_basis: ErasureBasis
    erased_at: datetime
    erased_by: uuid.UUID | None
    person_records: int = Field(
        description="Person records erased: this one and those linked with it as the same person"
    )
