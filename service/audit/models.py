"""The audit trail: append-only events on a fixed set of HMAC hash chains."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.types import UTCDateTime


class AuditEvent(SQLModel, table=True):
    """One audited action; `hash` chains it to the previous event of its chain."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.UniqueConstraint("chain", "seq"),
        sa.Index("ix_audit_event_entity", "entity_type", "entity_id"),
        sa.Index("ix_audit_event_occurred_at_id", "occurred_at", "id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    chain: int
    seq: int = Field(sa_type=sa.BigInteger)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    actor_user_id: uuid.UUID | None = Field(default=None, index=True)
    actor_org_id: uuid.UUID | None = None
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Which audit key sealed it, so keys can rotate and older events still verify.
    key_id: str = Field(max_length=32)
    # A non-secret fingerprint of that key (rules.key_fingerprint), so verifying with another
    # key under the same id says so; None for events sealed before it was stored.
    key_fingerprint: str | None = Field(default=None, max_length=16)


class AuditChainHead(SQLModel, table=True):
    """The last link of one chain; the row a writer locks to append to that chain."""

    __tablename__ = "audit_chain_head"

    chain: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(default=0, sa_type=sa.BigInteger)
    hash: str = Field(max_length=64)
