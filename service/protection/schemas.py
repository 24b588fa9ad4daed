"""Protection records as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from service.core.time import today, utcnow
from service.core.types import Instant
from service.protection.rules import (
    AssistanceKind,
    AssistanceOutcome,
    CustodyPlace,
    PunitiveMeasure,
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AssistanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AssistanceKind
    provided_on: date
    outcome: AssistanceOutcome = AssistanceOutcome.provided

    @model_validator(mode="after")
    def _not_future(self) -> Self:
        if self.provided_on > today():
            raise ValueError("provided_on must not be in the future")
        return self


class AssistancePublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: AssistanceKind
    organization: str
    provided_on: date
    outcome: AssistanceOutcome


class CustodyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    place_kind: CustodyPlace
    start: Instant
    end: Instant | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > utcnow():
            raise ValueError("start must not be in the future")
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class CustodyEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end: Instant


class CustodyPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    place_kind: CustodyPlace
    start: datetime
    end: datetime | None
    minor: bool
    hours: float


class NonPunishmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measure: PunitiveMeasure
    offence: Text
    occurred_on: date
    authority: Text


class NonPunishmentPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    measure: PunitiveMeasure
    offence: str
    occurred_on: date
    authority: str
