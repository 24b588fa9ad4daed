"""Consent as recorded and shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.consent.rules import ConsentPurpose, StatisticsBasisKind
from service.core.schemas import LanguageCode, Lax, RequestModel
from service.core.schemas import OrgCode as OrgCode


class ConsentCreate(RequestModel):
    """A version of the consent: purposes the person agreed to, or a refusal."""

    # Declared first: the validators of purposes and share_with read it.
    refused: bool = Field(
        default=False,
        description="The person refused: no purposes, no share_with. It withdraws every"
        " earlier version; only consent recorded after it counts. It cannot be revoked.",
    )
    purposes: list[Annotated[ConsentPurpose, Lax]] = Field(
        default_factory=list, validate_default=True, max_length=len(ConsentPurpose)
    )
    share_with: list[OrgCode] = Field(default_factory=list, max_length=30)
    language: LanguageCode = Field(
        description="ISO 639 code of the language the person consented in"
    )

    @field_validator("purposes")
    @classmethod
    def _purposes_or_refusal(
        cls, value: list[ConsentPurpose], info: ValidationInfo
    ) -> list[ConsentPurpose]:
        if info.data.get("refused"):
            if value:
                raise ValueError("a refusal has no purposes")
        elif not value:
            raise ValueError("give at least one purpose, or refused: true")
        return value

    @field_validator("share_with")
    @classmethod
    def _refusal_shares_nothing(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("refused") and value:
            raise ValueError("a refusal shares with no organization")
        return value

    @model_validator(mode="after")
    def _share_needs_purpose(self) -> ConsentCreate:
        if self.share_with and ConsentPurpose.data_sharing not in self.purposes:
            raise ValueError("share_with needs the data_sharing purpose")
        return self


class ConsentPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    version: int
    refused: bool
    purposes: list[ConsentPurpose]
    share_with: list[str]
    language: str
    recorded_at: datetime
    revoked_at: datetime | None


class StatisticsBasisCreate(RequestModel):
    """A legal basis, other than consent, for counting the case in the statistics."""

    basis: Annotated[StatisticsBasisKind, Lax]


class StatisticsBasisPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    basis: StatisticsBasisKind
    recorded_at: datetime
    withdrawn_at: datetime | None
    active: bool
