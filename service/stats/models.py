"""Published statistical releases: what was published, how, and its digest."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime


class StatsRelease(SQLModel, table=True):
    """A release of anonymized tables, kept as published with the parameters that produced
    it and a digest of its cells: recomputing it as known on `known_on` must give the same
    digest, whatever was corrected or entered late since."""

    __tablename__ = "stats_release"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    period_start: date
    period_end: date
    known_on: datetime = Field(sa_type=UTCDateTime)
    # The tables asked for: [{"code": "V4", "by": ["region"]}, ...].
    parameters: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    # The published tables (anonymized; nothing in them may identify a person).
    tables: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    digest: str = Field(max_length=64)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
