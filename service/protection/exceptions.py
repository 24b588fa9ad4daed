"""Errors of the protection domain."""

from __future__ import annotations

from service.core.errors import Conflict, NotFound


class CustodyNotFound(NotFound):
    code = "custody_period_not_found"
    title = "Custody period not found"


class CustodyAlreadyEnded(Conflict):
    code = "custody_already_ended"
    title = "Custody period already ended"
