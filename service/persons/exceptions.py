"""Errors of the persons domain."""

from __future__ import annotations

from service.core.errors import InvalidInput, NotFound, ProblemError
from service.persons.rules import BirthDateProblem


class ImplausibleBirthDate(InvalidInput):
    title = "Implausible birth date"

    def __init__(self, message: str) -> None:
        super().__init__("person.birth_date", message, type=self.code)


class BirthDateInFuture(ImplausibleBirthDate):
    code = "birth_date_in_future"
    title = "Birth date in the future"


class BirthDateAfterIdentification(ImplausibleBirthDate):
    code = "birth_date_after_identification"
    title = "Birth date after the identification"


class BirthDateTooEarly(ImplausibleBirthDate):
    code = "birth_date_too_early"
    title = "Birth date more than 120 years before the identification"


BIRTH_DATE_ERRORS: dict[BirthDateProblem, tuple[type[ImplausibleBirthDate], str]] = {
    BirthDateProblem.in_future: (BirthDateInFuture, "must not be in the future"),
    BirthDateProblem.after_identification: (
        BirthDateAfterIdentification,
        "must not be after identified_on",
    ),
    BirthDateProblem.too_early: (
        BirthDateTooEarly,
        "must not be more than 120 years before identified_on",
    ),
}


class PersonNotFound(NotFound):
    code = "person_not_found"
    title = "Person not found"


class PersonErased(ProblemError):
    """The person's identifying data was erased: nothing can be read or sealed for her."""

    status = 410
    code = "person_erased"
    title = "Person erased"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "The person's identifying data was erased; it cannot be read, and no new text"
            " about her can be sealed. The case's non-identifying facts remain."
        )
