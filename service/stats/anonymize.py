"""k-anonymity for person-level records: pure, no I/O.

Every record is reduced to its quasi-identifiers (what an outsider could know of a victim:
year, age, gender, citizenship, country and type of exploitation). Each has a hierarchy of
generalizations, from the value itself to "not known". Whole columns are generalized one
level at a time (full-domain generalization, the greedy choice of Datafly: the step that
leaves the fewest records in too small groups), until at most a small share of the records
would still be in a group of fewer than k; those records are then left out. Every
combination of quasi-identifiers that is published is shared by at least k records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from service.stats.rules import K_THRESHOLD

# The share of records that may be left out rather than generalize a column further.
MAX_SUPPRESSED: Final = Fraction(5, 100)

Record = Mapping[str, str]


@dataclass(frozen=True)
class Hierarchy:
    """A quasi-identifier's generalizations: level 0 keeps the value, each level after it
    maps the value (as given at level 0) to something coarser."""

    name: str
    levels: tuple[Callable[[str], str], ...]

    @property
    def top(self) -> int:
        return len(self.levels) - 1


def keep(value: str) -> str:
    return value


@dataclass(frozen=True)
class Anonymized:
    """The records as published (generalized, those in too small groups left out), and how."""

    records: list[dict[str, str]]
    levels: dict[str, int]
    suppressed: int


def _generalize(
    record: Record, hierarchies: Sequence[Hierarchy], levels: Sequence[int]
) -> tuple[str, ...]:
    return tuple(
        h.levels[level](record[h.name]) for h, level in zip(hierarchies, levels, strict=True)
    )


def _too_rare(
    records: Sequence[Record], hierarchies: Sequence[Hierarchy], levels: Sequence[int], k: int
) -> int:
    """How many records are in a group of fewer than k."""
    groups = Counter(_generalize(r, hierarchies, levels) for r in records)
    return sum(n for n in groups.values() if n < k)


def k_anonymize(
    records: Sequence[Record],
    hierarchies: Sequence[Hierarchy],
    *,
    k: int = K_THRESHOLD,
    max_suppressed: Fraction = MAX_SUPPRESSED,
) -> Anonymized:
    """Generalize, then leave out, until every published combination is shared by at least
    k records. Deterministic: the same records give the same output, in a sorted order that
    says nothing about the order they were recorded in."""
    if k < 1:
        raise ValueError("k is at least 1")
    levels = [0] * len(hierarchies)
    budget = int(max_suppressed * len(records))
    rare = _too_rare(records, hierarchies, levels, k)
    while rare > budget:
        options = []
        for i, h in enumerate(hierarchies):
            if levels[i] < h.top:
                trial = [*levels]
                trial[i] += 1
                # Fewest records left in small groups; then the least generalized column.
                options.append((_too_rare(records, hierarchies, trial, k), levels[i], i, trial))
        if not options:
            break
        rare, _, _, levels = min(options)
    keys = [_generalize(r, hierarchies, levels) for r in records]
    groups = Counter(keys)
    names = [h.name for h in hierarchies]
    kept = sorted(key for key in keys if groups[key] >= k)
    return Anonymized(
        records=[dict(zip(names, key, strict=True)) for key in kept],
        levels={h.name: level for h, level in zip(hierarchies, levels, strict=True)},
        suppressed=len(records) - len(kept),
    )


def smallest_group(records: Sequence[Record], names: Sequence[str]) -> int:
    """The size of the rarest combination of `names` among the records (0 when none)."""
    groups = Counter(tuple(r[n] for n in names) for r in records)
    return min(groups.values(), default=0)
