"""Facilities: places with beds that really exist."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Facility(SQLModel, table=True):
    """A shelter or residential centre, its beds and whom it may take."""

    __tablename__ = "facility"
    __table_args__ = (
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        sa.CheckConstraint("min_age <= max_age", name="age_range_ordered"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=48, unique=True)
    name: str = Field(max_length=200)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    region: str = Field(foreign_key="region.code", max_length=2, index=True)
    kind: str = Field(sa_type=code_column())
    status: str = Field(sa_type=code_column())
    capacity: int
    min_age: int = 0
    max_age: int = 120
    genders: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    exploitation_forms: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    lgbti_specialized: bool = False
    # Private: shown only to the operating organization and to those with a resident there.
    address: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
