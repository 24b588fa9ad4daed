"""Properties of the birth-date plausibility rule: no accepted birth date gives an age below
zero or above 120 at the identification."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from service.persons import rules
from service.persons.rules import BirthDateProblem

days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
recent = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@settings(deadline=None)
@given(days, recent, recent)
def test_an_accepted_birth_date_gives_an_age_from_0_to_120(
    birth_date: date, identified_on: date, today: date
) -> None:
    problem = rules.birth_date_problem(birth_date, identified_on=identified_on, today=today)
    if problem is None:
        assert birth_date <= today
        assert 0 <= rules.age_on(birth_date, identified_on) <= rules.MAX_AGE
    elif problem is BirthDateProblem.in_future:
        assert birth_date > today
    elif problem is BirthDateProblem.after_identification:
        assert identified_on < birth_date <= today
    else:
        assert rules.age_on(birth_date, identified_on) > rules.MAX_AGE - 1


def test_the_examples_of_the_issue_are_refused_each_with_its_code() -> None:
    today, identified_on = date(2026, 11, 29), date(2025, 3, 1)

    def problem(birth: date) -> BirthDateProblem | None:
        return rules.birth_date_problem(birth, identified_on=identified_on, today=today)

    assert problem(date(2030, 1, 1)) is BirthDateProblem.in_future
    assert problem(date(2025, 8, 1)) is BirthDateProblem.after_identification
    assert problem(date(1, 1, 1)) is BirthDateProblem.too_early
    assert problem(date(2009, 3, 1)) is None
