"""Audit events as auditors see them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventPublic(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_org_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str
    request_id: str | None
    changes: dict[str, Any]
    chain: int
    seq: int
    hash: str
