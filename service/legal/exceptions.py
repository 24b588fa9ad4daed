"""Errors of the legal domain."""

from __future__ import annotations

from service.core.errors import Conflict, NotFound, ProblemError


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
