"""Alert kinds and their lifecycle: pure, no I/O."""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    minor_in_custody = "minor_in_custody"
    referral_overdue = "referral_overdue"
    non_punishment = "non_punishment"
    long_custody = "long_custody"
    no_defender = "no_defender"
    repeated_interview = "repeated_interview"
    restitution_unpaid = "restitution_unpaid"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


def can_move(status: AlertStatus, to: AlertStatus) -> bool:
    """Open -> acknowledged -> resolved; open -> resolved. Nothing leaves resolved."""
    return (status, to) in {
        (AlertStatus.open, AlertStatus.acknowledged),
        (AlertStatus.open, AlertStatus.resolved),
        (AlertStatus.acknowledged, AlertStatus.resolved),
    }
