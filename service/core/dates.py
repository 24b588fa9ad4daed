"""Plausible days and instants: pure, no I/O. Each domain's rules name which of its dates
must be plausible and in which order; the services refuse the rest with a stable code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

# Nothing Ruta records happened before the pathway's first law (Ley 28950, 2007); 1990 leaves
# room for old offences and identifications entered late, and refuses year 1.
EARLIEST_DAY = date(1990, 1, 1)
EARLIEST_INSTANT = datetime(1990, 1, 1, tzinfo=UTC)
# A client's clock may run a little ahead of the server's.
CLOCK_SKEW = timedelta(minutes=5)

T = TypeVar("T", date, datetime)


class DateProblem(StrEnum):
    in_future = "in_future"
    too_early = "too_early"
    too_late = "too_late"
    out_of_order = "out_of_order"


@dataclass(frozen=True)
class Implausible:
    """A field whose date cannot be true, and why."""

    field: str
    problem: DateProblem
    message: str


def past_day(field: str, day: date, *, today: date) -> Implausible | None:
    """A day that has happened: not in the future, not before 1990."""
    if day > today:
        return Implausible(field, DateProblem.in_future, "must not be in the future")
    if day < EARLIEST_DAY:
        return Implausible(field, DateProblem.too_early, "must not be before 1990-01-01")
    return None


def planned_day(field: str, day: date, *, today: date, ahead: timedelta) -> Implausible | None:
    """A day that may lie ahead, but not further than `ahead`, and not before 1990."""
    if day > today + ahead:
        return Implausible(
            field, DateProblem.too_late, f"must not be more than {ahead.days} days ahead"
        )
    if day < EARLIEST_DAY:
        return Implausible(field, DateProblem.too_early, "must not be before 1990-01-01")
    return None


def past_instant(field: str, at: datetime, *, now: datetime) -> Implausible | None:
    """An instant that has happened (give or take a client's clock), not before 1990."""
    if at > now + CLOCK_SKEW:
        return Implausible(field, DateProblem.in_future, "must not be in the future")
    if at < EARLIEST_INSTANT:
        return Implausible(field, DateProblem.too_early, "must not be before 1990-01-01")
    return None


def ordered(earlier_field: str, earlier: T, later_field: str, later: T) -> Implausible | None:
    """`later` does not come before `earlier`."""
    if later < earlier:
        return Implausible(
            later_field, DateProblem.out_of_order, f"must not be before {earlier_field}"
        )
    return None


def first(*checks: Implausible | None) -> Implausible | None:
    """The first problem found, in the order the checks are given."""
    return next((c for c in checks if c is not None), None)
