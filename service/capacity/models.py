"""Facilities with beds that really exist, their dated capacity, placements and the waitlist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.db import partial_unique_index
from service.core.preconditions import Versioned
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column

# The partial unique indexes' conditions (the same SQL on PostgreSQL and SQLite).
ACTIVE_PLACEMENT = "status IN ('held', 'placed')"
WAITING_REQUEST = "status = 'waiting'"


class Facility(Versioned, table=True):
    """A shelter or residential centre, its beds and whom it may take.

    `in_use` counts the beds placed or held; the check constraint is the database's last guard
    against overbooking, whatever the application does.
    """

    __tablename__ = "facility"
    __table_args__ = (
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        sa.CheckConstraint("min_age <= max_age", name="age_range_ordered"),
        sa.CheckConstraint("in_use >= 0 AND in_use <= capacity", name="never_overbooked"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=48, unique=True)
    name: str = Field(max_length=200)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    region: str = Field(foreign_key="region.code", max_length=2, index=True)
    kind: str = Field(sa_type=code_column())
    status: str = Field(sa_type=code_column())
    capacity: int
    in_use: int = 0
    min_age: int = 0
    max_age: int = 120
    genders: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    exploitation_forms: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # ISO 3166-1 alpha-3 codes the facility is restricted to; empty: any nationality.
    nationalities: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    lgbti_specialized: bool = False
    # Private: shown only to the operating organization and to those with a resident there.
    address: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FacilityCapacityChange(SQLModel, table=True):
    """Capacity and status from a moment on: the dated history behind `facility`."""

    __tablename__ = "facility_capacity_change"
    __table_args__ = (
        sa.Index(
            "ix_facility_capacity_change_facility_id_effective_at", "facility_id", "effective_at"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    facility_id: uuid.UUID = Field(foreign_key="facility.id")
    effective_at: datetime = Field(sa_type=UTCDateTime)
    capacity: int
    status: str = Field(sa_type=code_column())
    reason: str | None = Field(default=None, max_length=300)
    recorded_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AllocationDecision(SQLModel, table=True):
    """One run of the placement rules: inputs, rule version, what was chosen and why."""

    __tablename__ = "allocation_decision"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    rule_version: str = Field(max_length=40)
    inputs: dict[str, Any] = Field(sa_type=sa.JSON)
    considered: dict[str, Any] = Field(sa_type=sa.JSON)
    outcome: str = Field(sa_type=code_column())
    facility_id: uuid.UUID | None = Field(default=None, foreign_key="facility.id")
    reason: str = Field(max_length=300)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Placement(SQLModel, table=True):
    """A bed used by a person: held for someone in transit, or occupied; ended, never deleted."""

    __tablename__ = "placement"
    __table_args__ = (
        sa.Index("ix_placement_facility_id_status", "facility_id", "status"),
        sa.Index("ix_placement_status_hold_expires_at", "status", "hold_expires_at"),
        # A case holds at most one bed, placed or held: the database decides, not only code.
        partial_unique_index("uq_placement_case_id_active", "case_id", where=ACTIVE_PLACEMENT),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    facility_id: uuid.UUID = Field(foreign_key="facility.id")
    status: str = Field(sa_type=code_column())
    decision_id: uuid.UUID = Field(foreign_key="allocation_decision.id")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    hold_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    placed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = Field(default=None, sa_type=code_column())


class PlacementRequest(SQLModel, table=True):
    """A person waiting for a bed, in the order of `rules.WAITLIST_ORDER`; the request ends
    placed, withdrawn (with a reason) or expired, and is never deleted."""

    __tablename__ = "placement_request"
    __table_args__ = (
        sa.Index("ix_placement_request_status_requested_at", "status", "requested_at"),
        # A case waits at most once.
        partial_unique_index(
            "uq_placement_request_case_id_waiting", "case_id", where=WAITING_REQUEST
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    facility_id: uuid.UUID | None = Field(default=None, foreign_key="facility.id")
    status: str = Field(sa_type=code_column())  # rules.RequestStatus
    minor: bool
    risk_level: int
    needs: dict[str, Any] = Field(sa_type=sa.JSON)
    region: str = Field(foreign_key="region.code", max_length=2)
    requested_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    placement_id: uuid.UUID | None = Field(default=None, foreign_key="placement.id")
    # Why it was withdrawn (rules.WithdrawReason); None while waiting, placed or expired.
    end_reason: str | None = Field(default=None, sa_type=code_column())


class PlacementRequestRiskChange(SQLModel, table=True):
    """A change of a waiting person's risk level, dated, with its reason: the history behind
    `placement_request.risk_level`. The reason is a caseworker's text about the person, sealed
    under her data key (None only where she was erased before migration 0022 sealed it)."""

    __tablename__ = "placement_request_risk_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="placement_request.id", index=True)
    from_level: int
    to_level: int
    reason_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    changed_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UnmetNeed(SQLModel, table=True):
    """A request no facility in the country could take: recorded and counted, never dropped."""

    __tablename__ = "unmet_need"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    reason: str = Field(sa_type=code_column(), index=True)
    region: str = Field(foreign_key="region.code", max_length=2)
    needs: dict[str, Any] = Field(sa_type=sa.JSON)
    decision_id: uuid.UUID = Field(foreign_key="allocation_decision.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
