"""Errors of the legal domain."""

from __future__ import annotations

from service.core.errors import Conflict, Forbidden, NotFound, ProblemError


class LegalAidNotFound(NotFound):
    code = "legal_aid_not_found"
    title = "Legal aid assignment not found"


class LegalAidAlreadyAssigned(Conflict):
    code = "legal_aid_already_assigned"
    title = "The case already has a public defender"


class LegalAidAlreadyEnded(Conflict):
    code = "legal_aid_already_ended"
    title = "Legal aid assignment already ended"


class NotADefender(ProblemError):
    """The named user is not an active public defender (role legal_aid)."""

    status = 422
    code = "not_a_defender"
    title = "Not a public defender"


class ProceedingNotFound(NotFound):
    code = "proceeding_not_found"
    title = "Proceeding not found"


class DefendantNotFound(NotFound):
    code = "defendant_not_found"
    title = "Defendant not found"


class RestitutionOrderNotFound(NotFound):
    code = "restitution_order_not_found"
    title = "Restitution order not found"


class ProsecutorOnly(Forbidden):
    """Only the proceeding's prosecutor organization (or, to open one, a prosecutor
    organization) records this step."""

    code = "prosecutor_only"
    title = "Only the prosecutor records this"


class CourtOnly(Forbidden):
    """Only the proceeding's court records this step."""

    code = "court_only"
    title = "Only the court records this"


class ProceedingExists(Conflict):
    code = "proceeding_exists"
    title = "A proceeding with this complaint number exists at this office"


class CaseAlreadyLinked(Conflict):
    code = "case_already_linked"
    title = "The case is already in this proceeding"


class StatusNotForward(Conflict):
    code = "status_not_forward"
    title = "A proceeding's status only moves forward"


class ProceedingStageConflict(Conflict):
    """The step does not fit the proceeding's stage (an outcome before trial by the court,
    a decision with defendants still ongoing ...)."""

    code = "proceeding_stage_conflict"
    title = "Not at this stage of the proceeding"


class PaymentExceedsBalance(Conflict):
    code = "payment_exceeds_balance"
    title = "The payment exceeds the outstanding balance"
