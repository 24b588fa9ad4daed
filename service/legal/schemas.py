"""Legal aid assignments and interviews as submitted and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, model_validator

from service.core.time import utcnow
from service.legal.rules import InterviewPurpose, LegalAidEndReason

Justification = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class LegalAidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The public defender: an active user of role legal_aid, of any organization (MINJUS
    # normally); that organization becomes involved in the case while the assignment lasts.
    defender_id: uuid.UUID


class LegalAidEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: LegalAidEndReason


class LegalAidPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    defender_id: uuid.UUID
    organization: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: LegalAidEndReason | None
    active: bool


class InterviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conducted_at: AwareDatetime
    purpose: InterviewPurpose
    gesell_chamber: bool = False
    # Required for any interview after the first (the law requires a single interview);
    # stored sealed under the person's data key and never returned.
    justification: Justification | None = None

    @model_validator(mode="after")
    def _not_future(self) -> Self:
        if self.conducted_at > utcnow():
            raise ValueError("conducted_at must not be in the future")
        return self


class InterviewPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    conducted_at: datetime
    organization: str
    purpose: InterviewPurpose
    gesell_chamber: bool
    repeated: bool
    has_justification: bool
