"""The audit appender of the worker, for routes whose only write is their audit event."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.audit.service import AuditAppender


async def get_audit_appender(request: Request) -> AuditAppender:
    appender: AuditAppender = request.app.state.audit_appender
    return appender


AuditAppenderDep = Annotated[AuditAppender, Depends(get_audit_appender)]
