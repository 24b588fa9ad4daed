"""Consent records and consent overrides."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.preconditions import Versioned
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Consent(Versioned, table=True):
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
    # Whether `purposes` names statistics: a column of its own so that the statistics can
    # select the counted cases in SQL on both databases (set from `purposes` on insert).
    covers_statistics: bool = False
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
    # Sealed under the person's data key (it may name people); returned by no route: evidence
    # for an inspection, the audit shows that the override happened. Always set since 0021;
    # None only for an earlier override whose person had been erased (the text was dropped).
    justification_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StatisticsBasis(SQLModel, table=True):
    """A legal basis, other than the person's consent, for counting the case in the
    anonymized statistics. Dated, withdrawn rather than deleted, so a past release can be
    recomputed as it was known."""

    __tablename__ = "statistics_basis"
    __table_args__ = (
        sa.CheckConstraint(
            "withdrawn_at IS NULL OR withdrawn_at >= recorded_at", name="withdrawn_after_recorded"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    basis: str = Field(sa_type=code_column())
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
