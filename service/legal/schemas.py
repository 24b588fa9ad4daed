"""Legal aid assignments, interviews, proceedings and restitution as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from service.core.schemas import (
    Date,
    DateTime,
    Id,
    Int,
    Lax,
    OrgCode,
    RequestModel,
    decimal_string,
    multi_line,
    positive_decimal_schema,
    single_line,
)
from service.legal.rules import (
    Charge,
    InterviewPurpose,
    LegalAidEndReason,
    Outcome,
    ProceedingStatus,
)

Justification = Annotated[str, multi_line(2000)]
# The code of a specialized prosecutor office (FISTRAP-LIMA ...).
OfficeCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{0,31}$", max_length=32)]


class LegalAidCreate(RequestModel):
    # The public defender: an active user of role legal_aid, of any organization (MINJUS
    # normally); that organization becomes involved in the case while the assignment lasts.
    defender_id: Id


class LegalAidEnd(RequestModel):
    reason: Annotated[LegalAidEndReason, Lax]


class LegalAidPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    defender_id: uuid.UUID
    organization: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: LegalAidEndReason | None
    active: bool


class InterviewCreate(RequestModel):
    # Plausible (not in the future, not before 1990): legal.rules.
    conducted_at: DateTime
    purpose: Annotated[InterviewPurpose, Lax]
    gesell_chamber: bool = False
    # Required for any interview after the first (the law requires a single interview);
    # stored sealed under the person's data key and never returned.
    justification: Justification | None = None


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
Soles = Annotated[
    Decimal,
    Lax,
    decimal_string(integer_digits=10, decimal_places=2),
    Field(gt=0, max_digits=12, decimal_places=2),
    positive_decimal_schema(integer_digits=10, decimal_places=2),
]
# A complaint number as the prosecutor office writes it (carpeta fiscal "123-2016").
ComplaintNumber = Annotated[str, single_line(64)]

# Every day below is plausible or refused with its own code (legal.rules.day_error): not in
# the future, not before 1990.


class ProceedingCaseCreate(RequestModel):
    # A victim's case the caller's organization can see.
    case_id: Id
    # The day of the offence against this victim: their age on it sets the minimum sentence.
    offence_on: Date


class ProceedingCreate(RequestModel):
    complaint_number: ComplaintNumber
    # The code of a specialized prosecutor office (reference data, e.g. FISTRAP-LIMA).
    prosecutor_office: OfficeCode
    complaint_filed_on: Date
    cases: list[ProceedingCaseCreate] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _cases_once(self) -> Self:
        if len({c.case_id for c in self.cases}) != len(self.cases):
            raise ValueError("a case appears more than once in cases")
        return self


class DefendantCreate(RequestModel):
    # Defendants carry no identity: a label (D1, D2 ...) is assigned in order.
    public_official: bool = False
    charge_filed: Annotated[Charge, Lax]


class StatusChange(RequestModel):
    status: Annotated[ProceedingStatus, Lax]
    effective_on: Date
    # Moving to trial names the court: the code of an organization of kind judiciary.
    court: OrgCode | None = None

    @model_validator(mode="after")
    def _court_with_trial(self) -> Self:
        if (self.status is ProceedingStatus.trial) != (self.court is not None):
            raise ValueError("court is given when, and only when, the status moves to trial")
        return self


class Sentence(RequestModel):
    years: Int = Field(ge=0, le=50)
    months: Int = Field(ge=0, le=11)


class OutcomeCreate(RequestModel):
    outcome: Annotated[Outcome, Lax]
    outcome_on: Date
    # The charge decided; for a conviction it defaults to the charge filed.
    charge: Annotated[Charge, Lax] | None = None
    # A conviction's prison term (0 years 0 months for a fine alone), and any fine.
    sentence: Sentence | None = None
    fine_soles: Soles | None = None


class RestitutionOrderCreate(RequestModel):
    # The victim's case, linked to the proceeding.
    case_id: Id
    amount_soles: Soles
    ordered_on: Date


class PaymentCreate(RequestModel):
    amount_soles: Soles
    received_on: Date


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
