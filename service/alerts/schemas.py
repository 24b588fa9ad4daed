"""Alerts as shown."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from service.alerts.rules import AlertKind, AlertStatus


class AlertPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: AlertKind
    status: AlertStatus
    source_id: uuid.UUID | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    escalation_level: int
    escalated_at: datetime | None
