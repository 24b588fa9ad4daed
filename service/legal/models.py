"""Public defenders assigned to cases, the interviews of the victim, criminal proceedings
with their defendants, and court-ordered restitution."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.db import partial_unique_index
from service.core.preconditions import Versioned
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column

# The partial unique index's condition (the same SQL on PostgreSQL and SQLite).
ACTIVE_ASSIGNMENT = "ended_at IS NULL"


class LegalAidAssignment(SQLModel, table=True):
    """A public defender assigned to a case, from when to when: dated history, ended with a
    reason, never overwritten or deleted."""

    __tablename__ = "legal_aid_assignment"
    __table_args__ = (
        # A case has at most one active defender: the database decides, not only code.
        partial_unique_index(
            "uq_legal_aid_assignment_case_id_active", "case_id", where=ACTIVE_ASSIGNMENT
        ),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    defender_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    # The defender's organization (MINJUS normally), involved while the assignment lasts.
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    assigned_by: uuid.UUID = Field(foreign_key="app_user.id")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = Field(default=None, sa_type=code_column())
    ended_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")


class Interview(SQLModel, table=True):
    """An interview of the victim. The law requires one: a later one is `repeated` and
    carries a justification, sealed under the person's data key (it may identify them)."""

    __tablename__ = "interview"
    __table_args__ = (sa.Index("ix_interview_case_id_conducted_at", "case_id", "conducted_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    conducted_at: datetime = Field(sa_type=UTCDateTime)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    purpose: str = Field(sa_type=code_column())
    gesell_chamber: bool
    repeated: bool
    justification_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Proceeding(Versioned, table=True):
    """A criminal proceeding: one complaint at one prosecutor office, possibly about several
    victims' cases and several defendants (one trafficking ring, one proceeding). Its status
    is the latest of its dated status changes."""

    __tablename__ = "proceeding"
    __table_args__ = (
        sa.UniqueConstraint("prosecutor_office", "complaint_number"),
        sa.Index("ix_proceeding_created_at_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    complaint_number: str = Field(max_length=64)
    prosecutor_office: str = Field(foreign_key="prosecutor_office.code", max_length=32)
    # The prosecutor organization (MP) that filed it, and the court (PJ) once at trial.
    prosecutor_organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    court_organization_id: uuid.UUID | None = Field(
        default=None, foreign_key="organization.id", index=True
    )
    complaint_filed_on: date
    status: str = Field(sa_type=code_column())
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProceedingStatusChange(SQLModel, table=True):
    """A proceeding's status from a day on: the dated history, never overwritten."""

    __tablename__ = "proceeding_status_change"
    __table_args__ = (
        sa.Index(
            "ix_proceeding_status_change_proceeding_id_effective_on",
            "proceeding_id",
            "effective_on",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    proceeding_id: uuid.UUID = Field(foreign_key="proceeding.id")
    status: str = Field(sa_type=code_column())
    effective_on: date
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProceedingCase(SQLModel, table=True):
    """A victim's case in a proceeding, with the day of the offence against that victim (the
    day their age is taken on for the sentencing minimums)."""

    __tablename__ = "proceeding_case"
    __table_args__ = (sa.UniqueConstraint("proceeding_id", "case_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    proceeding_id: uuid.UUID = Field(foreign_key="proceeding.id")
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    offence_on: date
    linked_by: uuid.UUID = Field(foreign_key="app_user.id")
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Defendant(Versioned, table=True):
    """A defendant, without identity: a label (D1, D2 ... in order per proceeding), the charge
    filed and the charge decided, and the current outcome (its history is in
    defendant_outcome). The flags are computed by the pure sentencing rule of
    `rule_version` when the outcome is recorded, and stored so statistics count them in SQL."""

    __tablename__ = "defendant"
    __table_args__ = (
        sa.UniqueConstraint("proceeding_id", "label"),
        sa.CheckConstraint(
            "sentence_months IS NULL OR sentence_months >= 0", name="sentence_not_negative"
        ),
        sa.CheckConstraint("fine_soles IS NULL OR fine_soles > 0", name="fine_positive"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    proceeding_id: uuid.UUID = Field(foreign_key="proceeding.id")
    label: str = Field(max_length=8)
    public_official: bool
    charge_filed: str = Field(sa_type=code_column())
    charge: str | None = Field(default=None, sa_type=code_column())
    outcome: str = Field(sa_type=code_column(), index=True)
    outcome_on: date | None = None
    sentence_months: int | None = None
    fine_soles: Decimal | None = Field(default=None, sa_type=sa.Numeric(12, 2))
    below_legal_minimum: bool = False
    charge_reduced: bool = False
    rule_version: str | None = Field(default=None, max_length=40)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DefendantOutcome(SQLModel, table=True):
    """An outcome recorded for a defendant, as recorded: the dated history of the defendant's
    current columns."""

    __tablename__ = "defendant_outcome"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    defendant_id: uuid.UUID = Field(foreign_key="defendant.id", index=True)
    outcome: str = Field(sa_type=code_column())
    outcome_on: date
    charge: str | None = Field(default=None, sa_type=code_column())
    sentence_months: int | None = None
    fine_soles: Decimal | None = Field(default=None, sa_type=sa.Numeric(12, 2))
    below_legal_minimum: bool
    charge_reduced: bool
    rule_version: str = Field(max_length=40)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RestitutionOrder(SQLModel, table=True):
    """Restitution a court ordered to one victim (the case, linked to the proceeding)."""

    __tablename__ = "restitution_order"
    __table_args__ = (sa.CheckConstraint("amount_soles > 0", name="amount_positive"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    proceeding_id: uuid.UUID = Field(foreign_key="proceeding.id", index=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    amount_soles: Decimal = Field(sa_type=sa.Numeric(12, 2))
    ordered_on: date = Field(index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RestitutionPayment(SQLModel, table=True):
    """A payment received against a restitution order."""

    __tablename__ = "restitution_payment"
    __table_args__ = (sa.CheckConstraint("amount_soles > 0", name="amount_positive"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="restitution_order.id", index=True)
    amount_soles: Decimal = Field(sa_type=sa.Numeric(12, 2))
    received_on: date
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
