"""Errors of the repatriation domain."""

from __future__ import annotations

from service.core.errors import Conflict, InvalidInput, NotFound


class RepatriationNotFound(NotFound):
    code = "repatriation_not_found"
    title = "Repatriation not found"


class NotAForeignNational(Conflict):
    """Asylum, residency and a return abroad concern a person of known foreign nationality."""

    code = "not_a_foreign_national"
    title = "The person is not a foreign national"


class NotAPeruvianAbroad(Conflict):
    """A repatriation to Peru is for a Peruvian whose identification names a country abroad."""

    code = "not_a_peruvian_exploited_abroad"
    title = "The person is not a Peruvian exploited abroad"


class NonRefoulement(Conflict):
    code = "non_refoulement"
    title = "The person's asylum claim is pending or recognized"


class ConsentRequired(Conflict):
    code = "consent_required"
    title = "The person has not consented to repatriation"


class RepatriationAlreadyPlanned(Conflict):
    code = "repatriation_already_planned"
    title = "The case already has a planned repatriation"


class RepatriationNotPlanned(Conflict):
    code = "repatriation_not_planned"
    title = "The repatriation is no longer planned"


class CaseClosedForRepatriation(Conflict):
    code = "case_closed"
    title = "The case is closed"


class InvalidRepatriation(InvalidInput):
    code = "invalid_repatriation"
