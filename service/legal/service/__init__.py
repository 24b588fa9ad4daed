"""The legal domain's use cases, by room: public defenders, the single interview, criminal
proceedings, their defendants, and court-ordered restitution (proceedings is the floor the
last two stand on). Other domains and the
router import from here."""

from service.legal.service.defendants import add_defendant, get_defendant_for, record_outcome
from service.legal.service.facts import defendants_known_on, restitution_known_on
from service.legal.service.interviews import interview_public, list_interviews, record_interview
from service.legal.service.legal_aid import (
    alert_cases_without_defender,
    assign_defender,
    end_assignment,
    legal_aid_public,
    list_assignments,
)
from service.legal.service.pending import cases_in_legal_work
from service.legal.service.proceedings import (
    add_case,
    change_status,
    create_proceeding,
    defendant_public,
    get_proceeding_for,
    list_case_proceedings,
    list_proceedings,
    proceeding_public,
)
from service.legal.service.restitution import (
    alert_unpaid_restitution,
    list_case_orders,
    order_restitution,
    record_payment,
    restitution_public,
)

__all__ = [
    "add_case",
    "add_defendant",
    "alert_cases_without_defender",
    "alert_unpaid_restitution",
    "assign_defender",
    "cases_in_legal_work",
    "change_status",
    "create_proceeding",
    "defendant_public",
    "defendants_known_on",
    "end_assignment",
    "get_defendant_for",
    "get_proceeding_for",
    "interview_public",
    "legal_aid_public",
    "list_assignments",
    "list_case_orders",
    "list_case_proceedings",
    "list_interviews",
    "list_proceedings",
    "order_restitution",
    "proceeding_public",
    "record_interview",
    "record_outcome",
    "record_payment",
    "restitution_known_on",
    "restitution_public",
]
