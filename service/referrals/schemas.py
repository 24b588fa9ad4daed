"""Referrals as requested and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.referrals.rules import ReferralPurpose, ReferralStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ReferralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_org: Annotated[str, StringConstraints(min_length=2, max_length=32)]
    purpose: ReferralPurpose
    consent_override_justification: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=1000)]
        | None
    ) = Field(
        default=None,
        description="Refer although consent does not cover the organization; needs the"
        " consent:override permission; audited.",
    )


class ReferralReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class ReferralRejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReferralPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    from_org: str
    to_org: str
    purpose: ReferralPurpose
    status: ReferralStatus
    reason: str | None
    consent_overridden: bool
    created_at: datetime
    due_at: datetime
    updated_at: datetime


class SuggestedReferral(BaseModel):
    to_org: str
    purpose: ReferralPurpose
