"""Referrals as requested and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from service.core.schemas import Lax, OrgCode, RequestModel, multi_line
from service.referrals.rules import ReferralPurpose, ReferralStatus

Reason = Annotated[str, multi_line(500)]


class ReferralCreate(RequestModel):
    to_org: OrgCode
    purpose: Annotated[ReferralPurpose, Lax]
    consent_override_justification: Annotated[str, multi_line(1000, min_length=10)] | None = Field(
        default=None,
        description="Refer although consent does not cover the organization; needs the"
        " consent:override permission; audited.",
    )


class ReferralReason(RequestModel):
    reason: Reason | None = None


class ReferralRejection(RequestModel):
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
