"""Asylum claims, residency and repatriations as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.cases.schemas import RegionCode
from service.consent.schemas import OrgCode
from service.core.time import today
from service.persons.schemas import CountryCode
from service.repatriation.rules import (
    AsylumClaimStatus,
    CancelReason,
    RepatriationDirection,
    RepatriationStatus,
    ResidencyStatus,
)


def _not_future(day: date, field: str) -> None:
    if day > today():
        raise ValueError(f"{field} must not be in the future")


class AsylumClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AsylumClaimStatus
    effective_on: date = Field(description="The day the claim took this status")

    @model_validator(mode="after")
    def _past(self) -> Self:
        _not_future(self.effective_on, "effective_on")
        return self


class ResidencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ResidencyStatus
    effective_on: date = Field(description="The day the residency took this status")

    @model_validator(mode="after")
    def _past(self) -> Self:
        _not_future(self.effective_on, "effective_on")
        return self


class AsylumClaimPublic(BaseModel):
    id: uuid.UUID
    status: AsylumClaimStatus
    effective_on: date
    organization: str
    recorded_at: datetime


class AsylumClaimHistory(BaseModel):
    current: AsylumClaimPublic | None = Field(
        description="In force: the latest effective_on, then the latest recorded"
    )
    history: list[AsylumClaimPublic] = Field(description="Oldest first")


class ResidencyPublic(BaseModel):
    id: uuid.UUID
    status: ResidencyStatus
    effective_on: date
    organization: str
    recorded_at: datetime


class ResidencyHistory(BaseModel):
    current: ResidencyPublic | None = Field(
        description="In force: the latest effective_on, then the latest recorded"
    )
    history: list[ResidencyPublic] = Field(description="Oldest first")


class RepatriationCreate(BaseModel):
    """to_peru: a Peruvian exploited abroad comes home, through a consulate, to a receiving
    organization in an arrival region. to_country_of_origin: a foreign national goes back;
    nothing of Peru's side is named, the case closes when she arrives."""

    model_config = ConfigDict(extra="forbid")

    direction: RepatriationDirection
    country: CountryCode | None = Field(
        default=None,
        description="to_peru: the country of exploitation (default: the latest one the"
        " identifications name). to_country_of_origin: the destination (default: the"
        " person's nationality).",
    )
    consulate: OrgCode | None = Field(
        default=None, description="to_peru only: the consulate's organization (RREE)"
    )
    receiving_organization: OrgCode | None = Field(
        default=None,
        description="to_peru only, required: the organization that receives the person in"
        " Peru (MIMP normally); it becomes involved in the case",
    )
    arrival_region: RegionCode | None = Field(
        default=None,
        description="to_peru only, required: where the person arrives; a bed is sought there",
    )
    travel_on: date = Field(description="The planned day of travel")


class RepatriationArrival(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arrived_on: date
    travelled_on: date | None = Field(
        default=None, description="The day the person actually travelled (default: travel_on)"
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        _not_future(self.arrived_on, "arrived_on")
        if self.travelled_on is not None and self.travelled_on > self.arrived_on:
            raise ValueError("travelled_on must not be after arrived_on")
        return self


class RepatriationCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["person_declined", "travel_not_possible", "recorded_in_error"]


class RepatriationPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    direction: RepatriationDirection
    country: str
    consulate: str | None
    receiving_organization: str | None
    arrival_region: str | None
    travel_on: date
    status: RepatriationStatus
    organization: str = Field(description="The organization that recorded it")
    recorded_at: datetime
    travelled_on: date | None
    arrived_on: date | None
    cancelled_at: datetime | None
    cancel_reason: CancelReason | None
