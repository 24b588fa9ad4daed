"""Assistance given, custody periods and punitive measures against victims."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Assistance(SQLModel, table=True):
    """A protection service given to the person."""

    __tablename__ = "assistance"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    kind: str = Field(sa_type=code_column(), index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    provided_by: uuid.UUID = Field(foreign_key="app_user.id")
    provided_on: date
    outcome: str = Field(sa_type=code_column())
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustodyPeriod(SQLModel, table=True):
    """Where the person was held, from when to when (end unknown while it lasts)."""

    __tablename__ = "custody_period"
    __table_args__ = (
        sa.CheckConstraint("end_at IS NULL OR end_at >= start_at", name="ends_after_start"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    place_kind: str = Field(sa_type=code_column())
    start_at: datetime = Field(sa_type=UTCDateTime)
    end_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Age (in years) at the start, for statistics on children held.
    minor: bool
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    # When Ruta learnt of the period and of its end (both may be entered late): statistics
    # "as known on" a day count only what was recorded by then.
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    end_recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How many of its time limits the escalation sweep has acted on
    # (rules.custody_escalation_level).
    escalation_level: int = 0


class NonPunishmentRecord(SQLModel, table=True):
    """An arrest, charge or other measure against the victim for acts compelled by trafficking."""

    __tablename__ = "non_punishment_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    measure: str = Field(sa_type=code_column())
    offence: str = Field(max_length=200)
    occurred_on: date
    authority: str = Field(max_length=200)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
