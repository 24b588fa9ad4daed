"""Errors of the persons domain."""

from __future__ import annotations

from service.core.errors import InvalidInput
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
