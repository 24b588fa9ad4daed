"""Facilities, placements and capacity as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from service.capacity.rules import (
    EndReason,
    FacilityKind,
    FacilityStatus,
    PlacementOutcome,
    PlacementStatus,
    RequestStatus,
    WithdrawReason,
)
from service.cases.rules import ExploitationForm
from service.core.schemas import (
    CountryCode,
    DateTime,
    Id,
    Int,
    Lax,
    Name,
    OrgCode,
    RegionCode,
    RequestModel,
    WholeNumber,
    single_line,
)
from service.persons.rules import Gender

Text = Name


class FacilityCreate(RequestModel):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,47}$", max_length=48)]
    name: Text
    operator: OrgCode
    region: RegionCode
    kind: Annotated[FacilityKind, Lax]
    capacity: Int = Field(ge=0, le=5000)
    min_age: Int = Field(default=0, ge=0, le=120)
    max_age: Int = Field(default=120, ge=0, le=120)
    genders: list[Annotated[Gender, Lax]] = Field(
        default_factory=list, max_length=len(Gender), description="Empty: any gender"
    )
    exploitation_forms: list[Annotated[ExploitationForm, Lax]] = Field(
        default_factory=list, max_length=len(ExploitationForm), description="Empty: every form"
    )
    nationalities: list[CountryCode] = Field(
        default_factory=list,
        max_length=50,
        description="ISO 3166-1 alpha-3 codes it is restricted to; empty: any",
    )
    lgbti_specialized: bool = False
    address: Annotated[str, single_line(300)] | None = None

    @model_validator(mode="after")
    def _ages(self) -> Self:
        if self.min_age > self.max_age:
            raise ValueError("min_age must not exceed max_age")
        return self


class CapacityChange(RequestModel):
    capacity: Annotated[int, Field(ge=0, le=5000), WholeNumber] | None = None
    status: Annotated[FacilityStatus, Lax] | None = None
    reason: Text

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.capacity is None and self.status is None:
            raise ValueError("give capacity, status or both")
        return self


class FacilityPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    operator: str
    region: str
    kind: FacilityKind
    status: FacilityStatus
    capacity: int
    occupied: int
    held: int
    available: int
    min_age: int
    max_age: int
    genders: list[str]
    exploitation_forms: list[str]
    nationalities: list[str]
    lgbti_specialized: bool
    address: str | None = Field(
        description="Only for the operating organization and organizations with a resident there"
    )
    as_of: datetime | None = None


class PlacementCreate(RequestModel):
    facility_id: Id | None = Field(default=None, description="Omit to find a bed")
    hold_hours: Annotated[int, Field(ge=1, le=72), WholeNumber] | None = Field(
        default=None,
        description="Hold the bed for a person in transit; it frees itself when it expires",
    )
    risk_level: Int = Field(default=1, ge=0, le=3, description="0 low ... 3 immediate danger")
    lgbti_specialized: bool = Field(
        default=False, description="The person needs LGBTI-specialized care"
    )


class PlacementPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    facility_id: uuid.UUID
    facility_code: str
    status: PlacementStatus
    started_at: datetime
    hold_expires_at: datetime | None
    placed_at: datetime | None
    ended_at: datetime | None
    end_reason: EndReason | None


class PlacementResult(BaseModel):
    outcome: PlacementOutcome
    decision_id: uuid.UUID
    placement: PlacementPublic | None = None
    waitlist_position: int | None = None
    request_id: uuid.UUID | None = None
    unmet_reason: str | None = None


class PlacementEnd(RequestModel):
    # case_closed is Ruta's own reason, when closing the case ends the placement.
    reason: Literal["discharged", "transferred"]


class PlacementRequestPublic(BaseModel):
    """A request for a bed: waiting (with its position), placed, withdrawn or expired."""

    id: uuid.UUID
    case_id: uuid.UUID
    facility_id: uuid.UUID | None
    status: RequestStatus
    minor: bool
    risk_level: int
    region: str
    requested_at: datetime
    resolved_at: datetime | None
    placement_id: uuid.UUID | None
    end_reason: WithdrawReason | None = Field(description="Why it was withdrawn")
    position: int | None = Field(description="Place on the national waitlist while waiting")


class RequestWithdraw(RequestModel):
    # The other reasons (placed_directly, case_closed, already_placed ...) are Ruta's own.
    reason: Literal["no_longer_needed", "declined_by_person", "placed_elsewhere"]


class RiskChange(RequestModel):
    risk_level: Int = Field(ge=0, le=3, description="0 low ... 3 immediate danger")
    reason: Text


class DecisionPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    rule_version: str
    inputs: dict[str, Any]
    considered: dict[str, Any]
    outcome: PlacementOutcome
    facility_id: uuid.UUID | None
    reason: str
    decided_at: datetime


class CapacityFigures(BaseModel):
    capacity: int
    occupied: int
    held: int
    available: int
    waitlist: int


class RegionCapacity(CapacityFigures):
    region: str


class CapacitySummary(BaseModel):
    national: CapacityFigures
    regions: list[RegionCapacity]
    unmet_needs: dict[str, int]


AsOf = DateTime
