"""Public defenders assigned to cases, and the interviews of the victim."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.db import partial_unique_index
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
