"""Ages on the day of an event, from what is stored of the person."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from service.persons.rules import StoredAge, age_on_date, minor_on_date

# Born 2001-01-10 and identified on 2026-03-14, as identify_person stores her: 25, born 2001.
GIVEN_BIRTH_DATE = StoredAge(
    age_at_identification=25,
    age_is_estimate=False,
    birth_year=2001,
    identified_on=date(2026, 3, 14),
)
# Identified on 2016-06-14 and estimated to be 15.
ESTIMATED = StoredAge(
    age_at_identification=15, age_is_estimate=True, birth_year=None, identified_on=date(2016, 6, 14)
)
UNKNOWN = StoredAge(
    age_at_identification=None,
    age_is_estimate=True,
    birth_year=None,
    identified_on=date(2026, 3, 14),
)


def test_a_woman_of_25_was_a_child_of_15_ten_years_before_her_identification() -> None:
    assert age_on_date(GIVEN_BIRTH_DATE, date(2016, 6, 14)) == 15
    assert minor_on_date(GIVEN_BIRTH_DATE, date(2016, 6, 14)) is True
    assert minor_on_date(GIVEN_BIRTH_DATE, date(2026, 11, 28)) is False


@pytest.mark.parametrize(
    ("on", "age", "minor"),
    [
        # Her 18th birthday falls between the event and today: the event decides.
        (date(2018, 12, 31), 17, True),
        # The stored facts allow a birthday as late as 14 March 2001: until then she may
        # still have been 17, and is protected as a child.
        (date(2019, 3, 13), 17, True),
        (date(2019, 3, 14), 18, False),
    ],
)
def test_the_18th_birthday_between_the_event_and_today_is_judged_on_the_event_day(
    on: date, age: int, minor: bool
) -> None:
    assert age_on_date(GIVEN_BIRTH_DATE, on) == age
    assert minor_on_date(GIVEN_BIRTH_DATE, on) is minor


def test_the_birth_year_narrows_the_birthday_an_age_alone_leaves_open() -> None:
    # Born 2001-06-01 and identified on 2026-03-14, aged 24. The age alone allows a birthday
    # as late as 14 March 2002; the birth year says 31 December 2001 at the latest.
    stored = replace(GIVEN_BIRTH_DATE, age_at_identification=24)
    assert age_on_date(stored, date(2019, 12, 30)) == 17
    assert age_on_date(stored, date(2019, 12, 31)) == 18
    assert minor_on_date(stored, date(2019, 12, 31)) is False
    # An estimate says nothing about the birthday: a birth year beside it is not used.
    estimated = replace(stored, age_is_estimate=True)
    assert age_on_date(estimated, date(2019, 12, 31)) == 17
    assert minor_on_date(estimated, date(2019, 12, 31)) is True


@pytest.mark.parametrize(
    ("on", "age", "minor"),
    [
        (date(2016, 6, 14), 15, True),  # the identification day
        (date(2014, 1, 1), 12, True),  # an event before the identification
        (date(2019, 6, 13), 17, True),  # the day before the estimate makes her 18
        (date(2019, 6, 14), 18, False),
        (date(2026, 11, 28), 25, False),
        (date(2000, 1, 1), 0, True),  # before the latest possible birth: never negative
    ],
)
def test_an_estimated_age_counts_whole_years_from_the_identification(
    on: date, age: int, minor: bool
) -> None:
    assert age_on_date(ESTIMATED, on) == age
    assert minor_on_date(ESTIMATED, on) is minor


def test_a_29_february_identification_counts_from_28_february() -> None:
    leap = replace(ESTIMATED, identified_on=date(2024, 2, 29), age_at_identification=17)
    assert age_on_date(leap, date(2025, 2, 27)) == 17
    assert age_on_date(leap, date(2025, 2, 28)) == 18


def test_an_unknown_age_is_protected_as_a_child_on_any_day() -> None:
    assert age_on_date(UNKNOWN, date(2016, 6, 14)) is None
    assert minor_on_date(UNKNOWN, date(2016, 6, 14)) is True
    assert minor_on_date(UNKNOWN, date(2060, 1, 1)) is True
