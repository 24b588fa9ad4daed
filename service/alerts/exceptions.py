"""Errors of the alerts domain."""

from __future__ import annotations

from service.core.errors import Conflict, NotFound


class AlertNotFound(NotFound):
    code = "alert_not_found"
    title = "Alert not found"


class IllegalAlertChange(Conflict):
    code = "illegal_alert_change"
    title = "Alert cannot change that way"
