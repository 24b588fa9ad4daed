"""Protection records as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel

from service.core.schemas import Date, DateTime, Lax, Name, RequestModel
from service.protection.rules import (
    AssistanceKind,
    AssistanceOutcome,
    CustodyPlace,
    PunitiveMeasure,
)

Text = Name


class AssistanceCreate(RequestModel):
    kind: Annotated[AssistanceKind, Lax]
    # Plausible days (not in the future, not before 1990): protection.rules.
    provided_on: Date
    outcome: Annotated[AssistanceOutcome, Lax] = AssistanceOutcome.provided


class AssistancePublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: AssistanceKind
    organization: str
    provided_on: date
    outcome: AssistanceOutcome


class CustodyCreate(RequestModel):
    place_kind: Annotated[CustodyPlace, Lax]
    # Plausible instants (not in the future, not before 1990) and their order:
    # protection.rules.custody_error.
    start: DateTime
    end: DateTime | None = None


class CustodyEnd(RequestModel):
    end: DateTime


class CustodyPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    place_kind: CustodyPlace
    start: datetime
    end: datetime | None
    minor: bool
    hours: float


class NonPunishmentCreate(RequestModel):
    measure: Annotated[PunitiveMeasure, Lax]
    offence: Text
    occurred_on: Date
    authority: Text


class NonPunishmentPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    measure: PunitiveMeasure
    offence: str
    occurred_on: date
    authority: str
