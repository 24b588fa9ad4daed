"""Errors of the cases domain."""

from __future__ import annotations

from service.core.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    """Also what an uninvolved organization gets: a case's existence is not disclosed."""

    code = "case_not_found"
    title = "Case not found"


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
