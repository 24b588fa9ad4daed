"""Consent records and consent overrides."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime


class Consent(SQLModel, table=True):
    """One version of the person's informed consent in a case; revoked, never deleted."""

    __tablename__ = "consent"
    __table_args__ = (sa.UniqueConstraint("case_id", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    version: int
    # A refusal: the person said no. It has no purposes, shares with nobody, and withdraws
    # every earlier version (consent.rules.in_force).
    refused: bool = Field(default=False)
    purposes: list[str] = Field(sa_type=sa.JSON)
    share_with: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    language: str = Field(max_length=3)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")


class ConsentOverride(SQLModel, table=True):
    """Sharing with an organization without consent, justified by a permitted user."""

    __tablename__ = "consent_override"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    justification: str = Field(max_length=1000)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
