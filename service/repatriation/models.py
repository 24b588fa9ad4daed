"""Asylum claims and residency as dated history, and repatriations with their dates."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.db import partial_unique_index
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column

# The partial unique index's condition (the same SQL on PostgreSQL and SQLite).
PLANNED = "status = 'planned'"


class AsylumClaimStatusRecord(SQLModel, table=True):
    """The person's asylum claim as of a day (none, pending, recognized, rejected): one row
    per change, never overwritten. The one in force is the latest effective_on, then the
    latest recorded_at (rules.current)."""

    __tablename__ = "asylum_claim_status"
    __table_args__ = (
        sa.Index("ix_asylum_claim_status_case_id_effective_on", "case_id", "effective_on"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    status: str = Field(sa_type=code_column())
    effective_on: date
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ResidencyStatusRecord(SQLModel, table=True):
    """The person's residency in Peru as of a day (none, temporary, permanent): dated
    history like the asylum claim."""

    __tablename__ = "residency_status"
    __table_args__ = (
        sa.Index("ix_residency_status_case_id_effective_on", "case_id", "effective_on"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    status: str = Field(sa_type=code_column())
    effective_on: date
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Repatriation(SQLModel, table=True):
    """A journey home: a Peruvian exploited abroad coming to Peru (from the country of
    exploitation, through a consulate, to a receiving organization in an arrival region), or
    a foreign national returning to her country. Planned, then arrived or cancelled; each
    step keeps its date and who recorded it."""

    __tablename__ = "repatriation"
    __table_args__ = (
        # One planned repatriation per case at a time: the database decides, not only code.
        partial_unique_index("uq_repatriation_case_id_planned", "case_id", where=PLANNED),
        sa.CheckConstraint("country <> 'PER'", name="country_abroad"),
        sa.CheckConstraint(
            "(direction = 'to_peru' AND consulate_organization_id IS NOT NULL"
            " AND receiving_organization_id IS NOT NULL AND arrival_region IS NOT NULL)"
            " OR (direction = 'to_country_of_origin' AND consulate_organization_id IS NULL"
            " AND receiving_organization_id IS NULL AND arrival_region IS NULL)",
            name="direction_fields",
        ),
        sa.CheckConstraint(
            "(status = 'planned' AND arrived_on IS NULL AND cancelled_at IS NULL)"
            " OR (status = 'arrived' AND arrived_on IS NOT NULL AND travelled_on IS NOT NULL"
            " AND arrived_on >= travelled_on AND cancelled_at IS NULL)"
            " OR (status = 'cancelled' AND arrived_on IS NULL AND cancelled_at IS NOT NULL)",
            name="status_dates",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    direction: str = Field(sa_type=code_column())
    # ISO 3166-1 alpha-3: where the person was exploited (to_peru), or where she goes.
    country: str = Field(max_length=3)
    consulate_organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id")
    receiving_organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id")
    arrival_region: str | None = Field(default=None, foreign_key="region.code", max_length=2)
    travel_on: date
    status: str = Field(sa_type=code_column())
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    travelled_on: date | None = None
    arrived_on: date | None = None
    arrival_recorded_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    arrival_recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    cancel_reason: str | None = Field(default=None, sa_type=code_column())
