"""The legal domain's use cases, by room: public defenders, the single interview, criminal
proceedings with their defendants, and court-ordered restitution. Other domains and the
router import from here."""

from service.legal.service.interviews import interview_public, list_interviews, record_interview
from service.legal.service.legal_aid import (
    alert_cases_without_defender,
    assign_defender,
    end_assignment,
    legal_aid_public,
    list_assignments,
)

__all__ = [
    "alert_cases_without_defender",
    "assign_defender",
    "end_assignment",
    "interview_public",
    "legal_aid_public",
    "list_assignments",
    "list_interviews",
    "record_interview",
]
