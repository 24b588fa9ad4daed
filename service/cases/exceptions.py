"""Errors of the cases domain."""

from __future__ import annotations

from service.cases.rules import IdentificationDateProblem
from service.core.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    """Also what an uninvolved organization gets: a case's existence is not disclosed. Raised
    without a detail, it says so in the words every refusal of a case uses."""

    code = "case_not_found"
    title = "Case not found"

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        super().__init__(detail or "No such case is visible to your organization.", **extra)


class UnknownRegion(InvalidInput):
    code = "unknown_region"


class InvalidPlaceOfExploitation(InvalidInput):
    code = "invalid_place_of_exploitation"


class NotAnIdentifier(Conflict):
    code = "not_an_identifier"
    title = "Only an identifying organization may correct an identification"


class IllegalCaseTransition(Conflict):
    code = "illegal_transition"
    title = "Transition not allowed"


class IdentifyingDataNotShared(Conflict):
    code = "identifying_data_not_shared"
    title = "The person's consent does not cover your organization"


class ImplausibleIdentificationDate(InvalidInput):
    title = "Implausible identification date"

    def __init__(self, message: str) -> None:
        super().__init__("identified_on", message, type=self.code)


class IdentificationInFuture(ImplausibleIdentificationDate):
    code = "identification_in_future"
    title = "Identification in the future"


class IdentificationTooEarly(ImplausibleIdentificationDate):
    code = "identification_too_early"
    title = "Identification before 1990"


IDENTIFICATION_DATE_ERRORS: dict[
    IdentificationDateProblem, tuple[type[ImplausibleIdentificationDate], str]
] = {
    IdentificationDateProblem.in_future: (IdentificationInFuture, "must not be in the future"),
    IdentificationDateProblem.too_early: (IdentificationTooEarly, "must not be before 1990-01-01"),
}
