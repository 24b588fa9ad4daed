"""Legal aid assignments, interviews, proceedings and restitution as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from service.core.time import today, utcnow
from service.core.types import Instant
from service.legal.rules import (
    Charge,
    InterviewPurpose,
    LegalAidEndReason,
    Outcome,
    ProceedingStatus,
)

Justification = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class LegalAidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The public defender: an active user of role legal_aid, of any organization (MINJUS
    # normally); that organization becomes involved in the case while the assignment lasts.
    defender_id: uuid.UUID


class LegalAidEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: LegalAidEndReason


class LegalAidPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    defender_id: uuid.UUID
    organization: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: LegalAidEndReason | None
    active: bool


class InterviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conducted_at: Instant
    purpose: InterviewPurpose
    gesell_chamber: bool = False
    # Required for any interview after the first (the law requires a single interview);
    # stored sealed under the person's data key and never returned.
    justification: Justification | None = None

    @model_validator(mode="after")
    def _not_future(self) -> Self:
        if self.conducted_at > utcnow():
            raise ValueError("conducted_at must not be in the future")
        return self


class InterviewPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    conducted_at: datetime
    organization: str
    purpose: InterviewPurpose
    gesell_chamber: bool
    repeated: bool
    has_justification: bool


# Soles, to the cent, positive. Sent and shown as a decimal string ("1500.00") so no
# client rounds it through a float.
Soles = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
# A complaint number as the prosecutor office writes it (carpeta fiscal "123-2016").
ComplaintNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]


def _not_future(day: date) -> date:
    if day > today():
        raise ValueError("must not be in the future")
    return day


class ProceedingCaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A victim's case the caller's organization can see.
    case_id: uuid.UUID
    # The day of the offence against this victim: their age on it sets the minimum sentence.
    offence_on: date

    _offence_not_future = field_validator("offence_on")(_not_future)


class ProceedingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    complaint_number: ComplaintNumber
    # The code of a specialized prosecutor office (reference data, e.g. FISTRAP-LIMA).
    prosecutor_office: str = Field(min_length=1, max_length=32)
    complaint_filed_on: date
    cases: list[ProceedingCaseCreate] = Field(min_length=1, max_length=200)

    _filed_not_future = field_validator("complaint_filed_on")(_not_future)

    @model_validator(mode="after")
    def _cases_once(self) -> Self:
        if len({c.case_id for c in self.cases}) != len(self.cases):
            raise ValueError("a case appears more than once in cases")
        return self


class DefendantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Defendants carry no identity: a label (D1, D2 ...) is assigned in order.
    public_official: bool = False
    charge_filed: Charge


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ProceedingStatus
    effective_on: date
    # Moving to trial names the court: the code of an organization of kind judiciary.
    court: str | None = Field(default=None, min_length=1, max_length=32)

    _effective_not_future = field_validator("effective_on")(_not_future)

    @model_validator(mode="after")
    def _court_with_trial(self) -> Self:
        if (self.status is ProceedingStatus.trial) != (self.court is not None):
            raise ValueError("court is given when, and only when, the status moves to trial")
        return self


class Sentence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    years: int = Field(ge=0, le=50)
    months: int = Field(ge=0, le=11)


class OutcomeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    outcome_on: date
    # The charge decided; for a conviction it defaults to the charge filed.
    charge: Charge | None = None
    # A conviction's prison term (0 years 0 months for a fine alone), and any fine.
    sentence: Sentence | None = None
    fine_soles: Soles | None = None

    _outcome_not_future = field_validator("outcome_on")(_not_future)


class RestitutionOrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The victim's case, linked to the proceeding.
    case_id: uuid.UUID
    amount_soles: Soles
    ordered_on: date

    _ordered_not_future = field_validator("ordered_on")(_not_future)


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_soles: Soles
    received_on: date

    _received_not_future = field_validator("received_on")(_not_future)


class StatusChangePublic(BaseModel):
    status: ProceedingStatus
    effective_on: date
    organization: str
    recorded_at: datetime


class ProceedingCasePublic(BaseModel):
    case_id: uuid.UUID
    offence_on: date
    linked_at: datetime


class DefendantPublic(BaseModel):
    id: uuid.UUID
    proceeding_id: uuid.UUID
    label: str
    public_official: bool
    charge_filed: Charge
    charge: Charge | None
    outcome: Outcome
    outcome_on: date | None
    sentence: Sentence | None
    fine_soles: Decimal | None
    # Computed by the sentencing rule of `rule_version` when the outcome was recorded.
    below_legal_minimum: bool
    charge_reduced: bool
    rule_version: str | None


class ProceedingPublic(BaseModel):
    id: uuid.UUID
    complaint_number: str
    prosecutor_office: str
    prosecutor: str
    court: str | None
    complaint_filed_on: date
    status: ProceedingStatus
    status_history: list[StatusChangePublic]
    # Only the linked cases the reader's organization can see; case_count counts them all.
    cases: list[ProceedingCasePublic]
    case_count: int
    defendants: list[DefendantPublic]
    created_at: datetime


class PaymentPublic(BaseModel):
    id: uuid.UUID
    amount_soles: Decimal
    received_on: date
    organization: str
    recorded_at: datetime


class RestitutionOrderPublic(BaseModel):
    id: uuid.UUID
    proceeding_id: uuid.UUID
    case_id: uuid.UUID
    amount_soles: Decimal
    ordered_on: date
    court: str
    payments: list[PaymentPublic]
    paid_soles: Decimal
    balance_soles: Decimal


class ProsecutorOfficePublic(BaseModel):
    """A specialized prosecutor office where proceedings are filed (reference data)."""

    code: str
    name: str
    region: str
