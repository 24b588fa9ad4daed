"""Organizations, users and login attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class OrganizationBase(SQLModel):
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(sa_type=code_column())
    region: str | None = Field(default=None, foreign_key="region.code", max_length=2)


class Organization(OrganizationBase, table=True):
    """An institution of the pathway (PNP, MIMP, an NGO ...)."""

    __tablename__ = "organization"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AppUser(SQLModel, table=True):
    """A person who signs in: one organization, one role."""

    __tablename__ = "app_user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    role: str = Field(sa_type=code_column())
    # None for accounts that sign in only through the external OpenID Connect issuer.
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    # Moved on by a password reset and by disabling: Ruta's tokens of an earlier generation
    # are refused (the token carries the generation it was issued at).
    token_generation: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """One password login attempt; failures drive the rate limit."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_username_attempted_at", "username", "attempted_at"),
        sa.Index("ix_login_attempt_client_address_attempted_at", "client_address", "attempted_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64)
    client_address: str = Field(max_length=64)
    succeeded: bool
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoginAddress(SQLModel, table=True):
    """An address a user signed in from, as a keyed hash (never the address itself): from
    such an address, failures made elsewhere never refuse the user's login."""

    __tablename__ = "login_address"

    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True)
    address_hash: str = Field(max_length=64, primary_key=True)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
