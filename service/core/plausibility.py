"""The errors of implausible dates: one code per problem, the field named, the value not."""

from __future__ import annotations

from service.core.dates import DateProblem, Implausible
from service.core.errors import InvalidInput


class ImplausibleDate(InvalidInput):
    code = "implausible_date"
    title = "Implausible date"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, type=self.code)


class DateInFuture(ImplausibleDate):
    code = "date_in_future"
    title = "Date in the future"


class DateTooEarly(ImplausibleDate):
    code = "date_too_early"
    title = "Date before 1990"


class DateTooLate(ImplausibleDate):
    code = "date_too_late"
    title = "Date too far ahead"


class DatesOutOfOrder(ImplausibleDate):
    code = "dates_out_of_order"
    title = "Dates out of order"


_ERRORS: dict[DateProblem, type[ImplausibleDate]] = {
    DateProblem.in_future: DateInFuture,
    DateProblem.too_early: DateTooEarly,
    DateProblem.too_late: DateTooLate,
    DateProblem.out_of_order: DatesOutOfOrder,
}


def refuse_implausible(found: Implausible | None) -> None:
    """Raise the error of a problem found by a domain's date rules, if any."""
    if found is not None:
        raise _ERRORS[found.problem](found.field, found.message)
