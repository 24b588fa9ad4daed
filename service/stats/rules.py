"""What a published statistical table is, and the threshold rule: pure, no I/O.

A table counts one measure over one period, crossed with at most two dimensions; a table
about persons also always carries the minor/adult and gender dimensions, so a published table
is a hypercube of up to four dimensions. Every dimension has its categories plus a total
(`TOTAL`), and every combination is published: the interior cells, each margin and the grand
total. Counts of 1 to 10 are never shown (k = 11, as the Counter Trafficking Data
Collaborative publishes); zero is shown. How further cells are hidden so that the hidden ones
cannot be recovered from the margins is `service.stats.disclosure`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from service.core.dates import DateProblem, Implausible, first, past_instant
from service.persons.rules import ADULT_AGE

# The smallest count that may be shown, and the least width of what an intruder can infer
# about a hidden cell from everything published.
K_THRESHOLD: Final = 11
# The label of a dimension's total in a cell's coordinates.
TOTAL: Final = "total"
MINOR = "minor"
GENDER = "gender"
PERSON_DIMENSIONS: Final = frozenset({MINOR, GENDER})
MAX_SUBJECT_DIMENSIONS: Final = 2

# A cell: one coordinate per dimension of its table, a category or TOTAL.
Cell = tuple[str, ...]
# What a cell counts, whatever table publishes it: the measure and its categories.
SharedKey = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Dimension:
    """A classification of the counted units: its name and its categories, in order."""

    name: str
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError(f"dimension {self.name!r} has no category")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"dimension {self.name!r} repeats a category")
        if TOTAL in self.categories:
            raise ValueError(f"dimension {self.name!r}: {TOTAL!r} names the margin")

    @property
    def values(self) -> tuple[str, ...]:
        """The categories, then the total."""
        return (*self.categories, TOTAL)


@dataclass(frozen=True)
class TableSpec:
    """The shape of one published table.

    `measure` names what is counted over which period ("victims_identified/2016"): two
    tables of a release share a cell when they count the same measure for the same
    categories, whatever else they break it down by.
    """

    name: str
    measure: str
    dimensions: tuple[Dimension, ...]
    about_persons: bool = True

    def __post_init__(self) -> None:
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r} repeats a dimension")
        subject = [n for n in names if n not in PERSON_DIMENSIONS]
        if self.about_persons:
            if not set(names) >= PERSON_DIMENSIONS:
                raise ValueError(f"table {self.name!r} is about persons: needs minor and gender")
            if len(subject) > MAX_SUBJECT_DIMENSIONS:
                raise ValueError(f"table {self.name!r} crosses more than two dimensions")
        elif not 1 <= len(names) <= MAX_SUBJECT_DIMENSIONS:
            raise ValueError(f"table {self.name!r} needs one or two dimensions")

    def cells(self) -> Iterator[Cell]:
        """Every published cell: interior cells, margins and the grand total."""
        return itertools.product(*(d.values for d in self.dimensions))

    def interior_cells(self) -> Iterator[Cell]:
        """The cells that total nothing: one category in every dimension."""
        return itertools.product(*(d.categories for d in self.dimensions))

    def coordinates(self, cell: Cell) -> dict[str, str]:
        """A cell named by dimension, for publishing."""
        return {d.name: value for d, value in zip(self.dimensions, cell, strict=True)}

    def shared_key(self, cell: Cell) -> SharedKey:
        """What a cell counts, whatever its table: one key in two tables is one number."""
        named = self.coordinates(cell)
        return self.measure, frozenset((n, v) for n, v in named.items() if v != TOTAL)


def complete_table(spec: TableSpec, counts: Mapping[Cell, int]) -> dict[Cell, int]:
    """Every cell of the table from the interior counts (missing interior cells count 0)."""
    interior = set(spec.interior_cells())
    unknown = set(counts) - interior
    if unknown:
        raise ValueError(f"table {spec.name!r}: not interior cells: {sorted(unknown)[:3]}")
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"table {spec.name!r}: a count is negative")
    table = {cell: 0 for cell in spec.cells()}
    for cell in interior:
        n = counts.get(cell, 0)
        if n == 0:
            continue
        # An interior count adds to every cell that totals it: each subset of its
        # coordinates replaced by TOTAL.
        for mask in itertools.product((False, True), repeat=len(cell)):
            table[tuple(TOTAL if m else v for v, m in zip(cell, mask, strict=True))] += n
    return table


def below_threshold(count: int, *, k: int = K_THRESHOLD) -> bool:
    """Primary suppression: a count from 1 to k - 1 is never shown; zero is."""
    return 0 < count < k


@dataclass(frozen=True)
class AgeBand:
    label: str
    lowest: int
    highest: int | None  # inclusive; None for the open band


def _bands(*spans: tuple[str, int, int | None]) -> tuple[AgeBand, ...]:
    return tuple(AgeBand(label, low, high) for label, low, high in spans)


# Peru's reporting bands: article 153's aggravations at 14 and 18, then 30.
PERU_AGE_BANDS: Final = _bands(
    ("0-13", 0, 13), ("14-17", 14, 17), ("18-29", 18, 29), ("30+", 30, None)
)
# The Counter Trafficking Data Collaborative's `ageBroad` bands, spelt as it spells them.
CTDC_AGE_BANDS: Final = _bands(
    ("0--8", 0, 8),
    ("9--17", 9, 17),
    ("18--20", 18, 20),
    ("21--23", 21, 23),
    ("24--26", 24, 26),
    ("27--29", 27, 29),
    ("30--38", 30, 38),
    ("39--47", 39, 47),
    ("48+", 48, None),
)
UNKNOWN_AGE_BAND: Final = "unknown"


def age_band(age: int | None, bands: Sequence[AgeBand] = PERU_AGE_BANDS) -> str:
    """The band of an age in completed years; an unknown age has its own category."""
    if age is None:
        return UNKNOWN_AGE_BAND
    if age < 0:
        raise ValueError("an age is never negative")
    for band in bands:
        if band.lowest <= age and (band.highest is None or age <= band.highest):
            return band.label
    raise ValueError(f"no band holds age {age}")


def minor_category(age: int | None) -> str:
    """The minor/adult category of an age on the day of the counted event.

    Statistics count an unknown age as unknown: the protective default that treats it as a
    minor elsewhere in Ruta would inflate the count of children.
    """
    if age is None:
        return UNKNOWN_AGE_BAND
    return "minor" if age < ADULT_AGE else "adult"


# The days a published period may span: no case before the pathway, nothing past 2100.
EARLIEST_PERIOD_DAY = date(1990, 1, 1)
LATEST_PERIOD_DAY = date(2100, 12, 31)


def release_problem(
    start: date, end: date, known_on: datetime | None, *, now: datetime
) -> Implausible | None:
    """A period between 1990 and 2100, counted as known at a moment that has come."""
    return first(
        None
        if start >= EARLIEST_PERIOD_DAY
        else Implausible("start", DateProblem.too_early, "must not be before 1990-01-01"),
        None
        if end <= LATEST_PERIOD_DAY
        else Implausible("end", DateProblem.too_late, "must not be after 2100-12-31"),
        None if known_on is None else past_instant("known_on", known_on, now=now),
    )
