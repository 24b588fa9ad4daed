"""Request and response models of cases and identifications."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.cases.rules import (
    CaseStatus,
    ExploitationForm,
    IdentificationContext,
    LabourSector,
    VictimStatus,
    exploitation_error,
)
from service.core.schemas import (
    CountryCode,
    Date,
    Lax,
    Name,
    RequestModel,
    multi_line,
    single_line,
)
from service.core.schemas import RegionCode as RegionCode
from service.persons.schemas import PersonCreate, PersonFacts, PossibleDuplicate

ShortText = Name
Indicator = Name
OperationRef = Annotated[str, single_line(100)]


class Exploitation(RequestModel):
    """A suspected form of exploitation; forced labour names its sector."""

    form: Annotated[ExploitationForm, Lax]
    sector: Annotated[LabourSector, Lax] | None = None

    @model_validator(mode="after")
    def _sector_matches_form(self) -> Self:
        error = exploitation_error(self.form, self.sector)
        if error:
            raise ValueError(error)
        return self


class MigrationRoute(RequestModel):
    """The countries a person was moved through, for statistics (ISO 3166-1 alpha-3)."""

    origin: CountryCode | None = None
    transit: list[CountryCode] = Field(default_factory=list, max_length=10)
    destination: CountryCode | None = None


class IdentificationFields(RequestModel):
    # Not in the future, not before 1990: see cases.rules.identified_on_error.
    identified_on: Date
    region: RegionCode | None = Field(
        default=None,
        description="Where in Peru the exploitation took place (INEI ubigeo department code);"
        " exactly one of region and exploitation_country",
    )
    exploitation_country: CountryCode | None = Field(
        default=None,
        description="The country where a Peruvian was exploited abroad (ISO 3166-1 alpha-3,"
        " not PER); required with the context consulate_abroad",
    )
    route: MigrationRoute | None = Field(
        default=None, description="Origin, transit and destination countries, if known"
    )
    place: ShortText
    context: Annotated[IdentificationContext, Lax]
    operation_ref: OperationRef | None = None
    exploitation: list[Exploitation] = Field(min_length=1, max_length=8)
    indicators: list[Indicator] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if len({(e.form, e.sector) for e in self.exploitation}) != len(self.exploitation):
            raise ValueError("exploitation lists the same form twice")
        return self


class CaseCreate(IdentificationFields):
    """A new case with its first identification and the person identified."""

    current_location: ShortText | None = None
    person: PersonCreate


class IdentificationCreate(IdentificationFields):
    """Another institution identifies the person of an existing case."""


class CaseUpdate(RequestModel):
    """Corrections to the caller's identification and to where the person is now."""

    place: ShortText | None = None
    operation_ref: OperationRef | None = None
    indicators: list[Indicator] | None = Field(default=None, max_length=50)
    exploitation: list[Exploitation] | None = Field(default=None, min_length=1, max_length=8)
    current_location: ShortText | None = None
    is_witness: bool | None = Field(
        default=None, description="The person is a witness in a proceeding"
    )


class IdentificationPublic(BaseModel):
    id: uuid.UUID
    organization: str = Field(description="Code of the identifying organization")
    identified_on: date
    region: str | None
    exploitation_country: str | None
    route: MigrationRoute | None
    place: str
    context: IdentificationContext
    operation_ref: str | None
    exploitation: list[Exploitation]
    indicators: list[str]
    created_at: datetime


class SuggestedReferral(BaseModel):
    to_org: str
    purpose: str


class AllowedTransition(BaseModel):
    model_config = ConfigDict(frozen=True)  # one instance per state, shared by every view

    to: CaseStatus
    reasons: list[str]


class CasePublic(BaseModel):
    """A case without any identifying data of the person."""

    id: uuid.UUID
    status: CaseStatus
    victim_status: VictimStatus
    person_id: uuid.UUID
    person: PersonFacts
    is_witness: bool
    current_location: str | None = Field(
        description="Where the person is now (stored sealed under her data key); null when"
        " not known or once she was erased"
    )
    involved_organizations: list[str]
    identifications: list[IdentificationPublic]
    allowed_transitions: list[AllowedTransition]
    suggested_referrals: list[SuggestedReferral] = Field(
        default_factory=list,
        description="Referrals the pathway expects that have not been made yet",
    )
    created_at: datetime
    updated_at: datetime


class CaseCreated(CasePublic):
    possible_duplicates: list[PossibleDuplicate]


class TransitionRequest(RequestModel):
    to: Annotated[CaseStatus, Lax]
    reason: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=40)
    ]
    note: Annotated[str, multi_line(500)] | None = Field(
        default=None, description="Stored encrypted under the person's data key"
    )


class TransitionPublic(BaseModel):
    id: uuid.UUID
    from_status: CaseStatus
    to_status: CaseStatus
    reason: str | None
    trigger: str
    has_note: bool = Field(description="A note was given; it is stored encrypted")
    at: datetime


class ScreeningCreate(RequestModel):
    victim_status: Literal["confirmed", "not_a_victim", "undetermined"]
    notes: Annotated[str, multi_line(4000)] | None = Field(
        default=None, description="Stored encrypted under the person's data key"
    )


class ScreeningPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    victim_status: VictimStatus
    organization: str
    screened_at: datetime


class ScreeningRead(ScreeningPublic):
    """A screening as listed: its notes only for the organization that screened."""

    has_notes: bool
    notes: str | None = Field(
        description="Decrypted for the screening organization only (each read is audited);"
        " null for everyone else"
    )


class CaseSummary(BaseModel):
    id: uuid.UUID
    status: CaseStatus
    victim_status: VictimStatus
    first_identified_on: date
    region: str | None = Field(description="Region of the first identification; null abroad")
    exploitation_country: str | None = Field(
        description="Country of exploitation of the first identification, when abroad"
    )
    created_at: datetime


class CaseFilters(BaseModel):
    status: CaseStatus | None = None
    region: RegionCode | None = None
    exploitation_country: CountryCode | None = None
    identified_from: date | None = None
    identified_to: date | None = None
    exploitation: ExploitationForm | None = None


class PlacementProfile(BaseModel):
    """What a bed must fit, nothing identifying."""

    age: int | None = Field(description="Age now (from age at identification), if known")
    gender: str
    exploitation: frozenset[str]
    region: str = Field(
        description="Where a bed is sought: the latest identification's region; for a person"
        " exploited abroad, the identifying organization's region, else Lima (arrival)"
    )
    nationality: str | None
