"""Published statistical releases: what was published, how, and its digest."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


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
    # suppression, or dp with the epsilon the release spent (a decimal, as asked).
    method: str = Field(
        default="suppression",
        sa_type=code_column(),
        sa_column_kwargs={"server_default": "suppression"},
    )
    epsilon: str | None = Field(default=None, max_length=32)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PrivacyBudget(SQLModel, table=True):
    """What a release year has spent of its differential-privacy budget, in millionths of
    epsilon: spent by a conditional UPDATE that never passes the year's budget."""

    __tablename__ = "privacy_budget"
    __table_args__ = (sa.CheckConstraint("spent_micro >= 0", name="spent_micro_not_negative"),)

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    spent_micro: int = 0


class PrivacyBudgetSpend(SQLModel, table=True):
    """The ledger: each differentially private release and the epsilon it spent."""

    __tablename__ = "privacy_budget_spend"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    year: int = Field(foreign_key="privacy_budget.year", index=True)
    release_id: uuid.UUID = Field(foreign_key="stats_release.id", unique=True)
    epsilon: str = Field(max_length=32)
    epsilon_micro: int
    spent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")


class CtdcDataset(SQLModel, table=True):
    """A file of the Counter Trafficking Data Collaborative imported for comparison: its
    records live in `ctdc_record`, never among Ruta's cases."""

    __tablename__ = "ctdc_dataset"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    # The file's name as given (not its path).
    source: str = Field(max_length=300)
    records: int
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CtdcRecord(SQLModel, table=True):
    """One victim of an imported CTDC file, as the file gives it (None where it says -99)."""

    __tablename__ = "ctdc_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dataset_id: uuid.UUID = Field(foreign_key="ctdc_dataset.id", index=True)
    line: int
    year: int | None = None
    datasource: str | None = Field(default=None, max_length=200)
    gender: str | None = Field(default=None, max_length=200)
    # CTDC's ageBroad, spelt "0--8" or "48+", and its bounds (the upper one None if open).
    age_band: str | None = Field(default=None, max_length=20)
    age_lowest: int | None = None
    age_highest: int | None = None
    majority_status: str | None = Field(default=None, max_length=200)
    citizenship: str | None = Field(default=None, max_length=200)
    country_of_exploitation: str | None = Field(default=None, max_length=200)
    exploitation: str | None = Field(default=None, max_length=200)
    # The file's other columns as read: the flags, means of control, recruiter ...
    fields: dict[str, Any] = Field(sa_type=sa.JSON)
