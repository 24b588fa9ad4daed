"""Request and response models of the identity domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from service.identity.rules import OrganizationKind, Role


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class OrganizationPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: OrganizationKind
    region: str | None


class Me(BaseModel):
    id: uuid.UUID
    username: str
    role: Role
    organization: OrganizationPublic


class UserSummary(BaseModel):
    """A staff account as an administrator sees it: no password, no victim's data."""

    username: str
    organization: str
    role: Role
    active: bool
    password: bool  # whether the user may sign in with a password (else OpenID Connect only)
    last_login_at: datetime | None  # the last password sign-in still on record
    created_at: datetime
