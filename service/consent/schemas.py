"""Consent as recorded and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.consent.rules import ConsentPurpose

OrgCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")]


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purposes: list[ConsentPurpose] = Field(min_length=1)
    share_with: list[OrgCode] = Field(default_factory=list, max_length=30)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")] = Field(
        description="ISO 639 code of the language the person consented in"
    )

    @model_validator(mode="after")
    def _share_needs_purpose(self) -> ConsentCreate:
        if self.share_with and ConsentPurpose.data_sharing not in self.purposes:
            raise ValueError("share_with needs the data_sharing purpose")
        return self


class ConsentPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    version: int
    purposes: list[ConsentPurpose]
    share_with: list[str]
    language: str
    recorded_at: datetime
    revoked_at: datetime | None
