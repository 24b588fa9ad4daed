"""Legal aid and the single interview: pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from service.identity.rules import Role

# Only these users can be a case's public defender.
DEFENDER_ROLE = Role.legal_aid


class LegalAidEndReason(StrEnum):
    """Why a public defender's assignment to a case ended."""

    replaced = "replaced"
    case_closed = "case_closed"
    declined_by_person = "declined_by_person"
    conflict_of_interest = "conflict_of_interest"
    defender_unavailable = "defender_unavailable"
    assigned_in_error = "assigned_in_error"


class InterviewPurpose(StrEnum):
    complaint = "complaint"
    testimony = "testimony"
    medical_legal = "medical_legal"
    other = "other"


def can_defend(*, role: str, is_active: bool) -> bool:
    """Whether a user may be assigned as a case's public defender."""
    return is_active and role == DEFENDER_ROLE.value


def interview_is_repeated(earlier_interviews: int) -> bool:
    """The law requires a single interview: any after the first is a repetition."""
    return earlier_interviews >= 1


def defender_overdue(*, in_care_since: datetime, now: datetime, days: int) -> bool:
    """A case in care this long without a public defender needs one now."""
    return now - in_care_since >= timedelta(days=days)


def alert_cutoff(*, now: datetime, days: int) -> datetime:
    """Cases in care since this moment or earlier are overdue for a defender."""
    return now - timedelta(days=days)
