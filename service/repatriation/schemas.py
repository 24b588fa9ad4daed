"""Asylum claims, residency and repatriations as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from service.core.schemas import CountryCode, Date, Lax, OrgCode, RegionCode, RequestModel
from service.repatriation.rules import (
    AsylumClaimStatus,
    CancelReason,
    RepatriationDirection,
    RepatriationStatus,
    ResidencyStatus,
)

# Every day below is plausible or refused with its own code (repatriation.rules): not in
# the future (the planned travel_on excepted), not before 1990, and in order.


class AsylumClaimCreate(RequestModel):
    status: Annotated[AsylumClaimStatus, Lax]
    effective_on: Date = Field(description="The day the claim took this status")


class ResidencyCreate(RequestModel):
    status: Annotated[ResidencyStatus, Lax]
    effective_on: Date = Field(description="The day the residency took this status")


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


class RepatriationCreate(RequestModel):
    """to_peru: a Peruvian exploited abroad comes home, through a consulate, to a receiving
    organization in an arrival region. to_country_of_origin: a foreign national goes back;
    nothing of Peru's side is named, the case closes when she arrives."""

    direction: Annotated[RepatriationDirection, Lax]
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
    travel_on: Date = Field(description="The planned day of travel")


class RepatriationArrival(RequestModel):
    arrived_on: Date
    travelled_on: Date | None = Field(
        default=None, description="The day the person actually travelled (default: travel_on)"
    )


class RepatriationCancel(RequestModel):
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
