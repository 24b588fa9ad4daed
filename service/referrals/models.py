"""Referrals between organizations, and their dated status history."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.preconditions import Versioned
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Referral(Versioned, table=True):
    """A request from one organization to another to serve the person of a case."""

    __tablename__ = "referral"
    __table_args__ = (
        sa.Index("ix_referral_to_org_id_status", "to_org_id", "status"),
        sa.Index("ix_referral_from_org_id_status", "from_org_id", "status"),
        sa.Index("ix_referral_status_due_at", "status", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    from_org_id: uuid.UUID = Field(foreign_key="organization.id")
    to_org_id: uuid.UUID = Field(foreign_key="organization.id")
    purpose: str = Field(sa_type=code_column())
    status: str = Field(sa_type=code_column())
    # Why it ended as it did: a code where the system ended it (`rules.SystemReason`), else
    # the caseworker's free text, sealed under the person's data key (it may name people).
    reason_code: str | None = Field(default=None, sa_type=code_column())
    reason_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    consent_override_id: uuid.UUID | None = Field(default=None, foreign_key="consent_override.id")
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReferralStatusChange(SQLModel, table=True):
    """One dated status change of a referral."""

    __tablename__ = "referral_status_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referral.id", index=True)
    from_status: str | None = Field(default=None, sa_type=code_column())
    to_status: str = Field(sa_type=code_column())
    reason_code: str | None = Field(default=None, sa_type=code_column())
    reason_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    actor_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
