"""Alerts on cases."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Alert(SQLModel, table=True):
    """Something about a case that needs a person's attention now."""

    __tablename__ = "alert"
    __table_args__ = (sa.Index("ix_alert_kind_source_id", "kind", "source_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    kind: str = Field(sa_type=code_column())
    # What raised it (a custody period, a referral, a non-punishment record).
    source_id: uuid.UUID | None = None
    # Addressed to one organization, or (None) to every organization involved in the case.
    organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id")
    status: str = Field(sa_type=code_column(), index=True)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    # Raised again while the situation lasts (custody held past its limits): how many times,
    # and when last.
    escalation_level: int = 0
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
