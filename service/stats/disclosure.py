"""Disclosure control of published tables: pure, no I/O.

Counts of 1 to 10 are hidden (primary suppression). Hiding them is not enough: a hidden
cell could be recomputed from its margin and the cells beside it. Complementary suppression
hides further cells so that, for every hidden cell, everything published (cells, margins,
and that counts are never negative) still allows a range of at least k = 11 values.

The method is the hypercube method (Repsilber; tau-argus's "hypercube", sdcTable's
"HYPERCUBE"), applied to a table with all its margins. For a hidden cell p, pick in every
dimension a partner value q_d != p_d (another category or the total). The 2^n cells that
take p_d or q_d in each dimension are the corners of a hypercube. Moving the corners by +t or
-t, with the sign of the corner flipped in every dimension where both p_d and q_d are
categories, leaves every published sum unchanged: along one dimension, two categories trade
t (their total stays), while a category and its total move together. So if every corner is
hidden, the intruder cannot tell t apart, for any t that keeps the corners non-negative:

    t in [-min(corners moving with p), +min(corners moving against p)]

Every corner moves by t, so every corner (the primary cell and the complementary ones alike)
has a feasible range at least as wide as that interval. The method picks, for each cell to
protect, the hypercube whose interval is at least k wide and whose newly hidden corners carry
the least count. Hiding more never narrows anyone's range (it only drops equations), so cells
protected earlier stay protected. Zeros are always shown and never a corner: a zero can move
neither way, so it protects nothing. A solution always exists: replacing every category of p
by the total (and every total of p by a non-empty category) gives a hypercube whose corners
all move with p, an interval without upper bound.

Tables of one release that publish the same number (a margin in common) hide it in all of
them alike: `protect_release`.

The optional differentially private mode adds discrete Laplace noise to the interior counts
and then suppresses on the noisy counts, so no suppression is decided from a true count.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from service.stats.rules import (
    K_THRESHOLD,
    TOTAL,
    Cell,
    SharedKey,
    TableSpec,
    below_threshold,
    complete_table,
)

# Corners in another table of the release cost this much more: hiding them there too is
# what keeps linked tables consistent, and is best avoided.
SHARED_CELL_PENALTY = 1_000_000


@dataclass(frozen=True)
class PublishedCell:
    """One published number, or the mark that it is hidden."""

    value: int | None

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def as_json(self) -> dict[str, int | bool]:
        """`{"value": n}` or `{"suppressed": true}`."""
        return {"suppressed": True} if self.value is None else {"value": self.value}


@dataclass(frozen=True)
class ProtectedTable:
    """A table ready to publish: every cell, margins included, shown or hidden.

    `primary` (the cells hidden because they are small) is for audits only: publishing which
    hidden cells are primary would say that they are between 1 and 10.
    """

    spec: TableSpec
    cells: Mapping[Cell, PublishedCell]
    primary: frozenset[Cell]

    @property
    def suppressed(self) -> frozenset[Cell]:
        return frozenset(c for c, p in self.cells.items() if p.suppressed)

    def published(self) -> list[dict[str, object]]:
        """Every cell with its coordinates by dimension name, in the spec's order."""
        return [
            {"coordinates": self.spec.coordinates(cell), **self.cells[cell].as_json()}
            for cell in self.spec.cells()
        ]


@dataclass(frozen=True)
class TableCounts:
    """A table's shape and its interior counts (cells totalling nothing)."""

    spec: TableSpec
    counts: Mapping[Cell, int]


def protect_table(
    spec: TableSpec, counts: Mapping[Cell, int], *, k: int = K_THRESHOLD
) -> ProtectedTable:
    """Suppress the small cells of one table and enough others to protect them."""
    table = complete_table(spec, counts)
    primary = frozenset(c for c, n in table.items() if below_threshold(n, k=k))
    hidden = _suppress(spec, table, primary, k=k, cost=table.__getitem__)
    return _published(spec, table, hidden, primary)


def protect_release(tables: Sequence[TableCounts], *, k: int = K_THRESHOLD) -> list[ProtectedTable]:
    """Suppress the tables of one release so that a number they share is hidden in all or none.

    A table whose every cell another table of the release also publishes (a margin of it,
    as "by region" is of "by region and minor") adds no equation: it takes its cells' fate
    from that table. The others are suppressed in turn, each also hiding what another has
    hidden, until no table hides anything new. Hypercubes avoid cells that another table
    shares, so that a table's complementary cells seldom spill into the others.

    The width guarantee is proven for one table and for tables contained in another. Tables
    that overlap only in part (by region and minor, by region and gender) are each protected
    on their own equations; the tests audit such releases as linked sets and find them
    protected, but no proof covers them: audit a release before publishing it.
    """
    completed = [complete_table(t.spec, t.counts) for t in tables]
    keyed = [
        {t.spec.shared_key(cell): n for cell, n in table.items()}
        for t, table in zip(tables, completed, strict=True)
    ]
    _check_shared_cells_agree(tables, keyed)
    parents = _containing_tables(keyed)
    independent = [i for i, parent in enumerate(parents) if parent is None]
    sharing: dict[SharedKey, int] = {}
    for i in independent:
        for key in keyed[i]:
            sharing[key] = sharing.get(key, 0) + 1

    hidden_keys: set[SharedKey] = set()
    hidden: dict[int, frozenset[Cell]] = {}
    primary = {
        i: frozenset(c for c, n in completed[i].items() if below_threshold(n, k=k))
        for i in independent
    }
    changed = True
    while changed:
        changed = False
        for i in independent:
            spec, table = tables[i].spec, completed[i]
            forced = frozenset(c for c in table if spec.shared_key(c) in hidden_keys)
            if i in hidden and forced <= hidden[i]:
                continue  # already hides, and so protects, all that the others hide

            def cost(cell: Cell, spec: TableSpec = spec, table: dict[Cell, int] = table) -> int:
                shared = sharing[spec.shared_key(cell)] > 1
                return table[cell] + (SHARED_CELL_PENALTY if shared else 0)

            hidden[i] = _suppress(spec, table, primary[i] | forced, k=k, cost=cost)
            new = {spec.shared_key(c) for c in hidden[i]} - hidden_keys
            if new:
                hidden_keys |= new
                changed = True

    result: list[ProtectedTable] = []
    for i, t in enumerate(tables):
        table = completed[i]
        if parents[i] is None:
            result.append(_published(t.spec, table, hidden[i], primary[i]))
            continue
        mine = frozenset(c for c in table if t.spec.shared_key(c) in hidden_keys)
        small = frozenset(c for c, n in table.items() if below_threshold(n, k=k))
        result.append(_published(t.spec, table, mine, small))
    return result


def _published(
    spec: TableSpec, table: Mapping[Cell, int], hidden: Iterable[Cell], primary: frozenset[Cell]
) -> ProtectedTable:
    hidden = frozenset(hidden)
    cells = {c: PublishedCell(None if c in hidden else n) for c, n in table.items()}
    return ProtectedTable(spec=spec, cells=cells, primary=primary)


def _check_shared_cells_agree(
    tables: Sequence[TableCounts], keyed: Sequence[Mapping[SharedKey, int]]
) -> None:
    categories: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    for t in tables:
        for d in t.spec.dimensions:
            first_spec, split = categories.setdefault(
                (t.spec.measure, d.name), (t.spec.name, d.categories)
            )
            if split != d.categories:
                # Margins over different categories are different sums: not one release's.
                raise ValueError(
                    f"tables {first_spec!r} and {t.spec.name!r} split {d.name!r} differently"
                )
    seen: dict[SharedKey, tuple[str, int]] = {}
    for t, cells in zip(tables, keyed, strict=True):
        for key, n in cells.items():
            first = seen.setdefault(key, (t.spec.name, n))
            if first[1] != n:
                raise ValueError(
                    f"tables {first[0]!r} and {t.spec.name!r} count one cell differently"
                )


def _containing_tables(keyed: Sequence[Mapping[SharedKey, int]]) -> list[int | None]:
    """For each table, a table of the release that publishes all its cells, if any."""
    parents: list[int | None] = []
    for i, cells in enumerate(keyed):
        parent = None
        for j, other in enumerate(keyed):
            # The larger table is the parent; of two equal tables the first one is.
            bigger = len(other) > len(cells) or (len(other) == len(cells) and j < i)
            if j != i and bigger and cells.keys() <= other.keys():
                parent = j
                break
        parents.append(parent)
    # A parent may itself be contained: follow the chain to a table nobody contains.
    for i, parent in enumerate(parents):
        while parent is not None and parents[parent] is not None:
            parent = parents[parent]
        parents[i] = parent
    return parents


@dataclass(frozen=True)
class _Hypercube:
    corners: tuple[Cell, ...]
    width: float
    cost: int
    new: int


def _suppress(
    spec: TableSpec,
    table: Mapping[Cell, int],
    to_protect: Iterable[Cell],
    *,
    k: int,
    cost: Callable[[Cell], int],
) -> frozenset[Cell]:
    """Hide `to_protect` and, for each, the corners of the cheapest hypercube that protects it."""
    pending = sorted(to_protect, key=lambda c: (table[c], c))
    if any(table[c] == 0 for c in pending):
        raise ValueError(f"table {spec.name!r}: a zero is never hidden")
    hidden = set(pending)
    protected: set[Cell] = set()
    for cell in pending:
        if cell in protected:
            continue
        cube = _cheapest_hypercube(spec, table, cell, hidden, k=k, cost=cost)
        hidden.update(cube.corners)
        protected.update(cube.corners)
    return frozenset(hidden)


def _cheapest_hypercube(
    spec: TableSpec,
    table: Mapping[Cell, int],
    cell: Cell,
    hidden: set[Cell],
    *,
    k: int,
    cost: Callable[[Cell], int],
) -> _Hypercube:
    partners = [[v for v in d.values if v != p] for d, p in zip(spec.dimensions, cell, strict=True)]
    best: _Hypercube | None = None
    for partner in itertools.product(*partners):
        bound = math.inf if best is None else best.cost
        cube = _hypercube(table, cell, partner, hidden, cost=cost, bound=bound)
        if cube is None or cube.width < k:
            continue
        if best is None or (cube.cost, cube.new, -cube.width) < (best.cost, best.new, -best.width):
            best = cube
    # Unreachable for a cell above zero (see the module's docstring); a guard, not a path.
    assert best is not None, f"no hypercube protects {cell} of {spec.name!r}"
    return best


def _hypercube(
    table: Mapping[Cell, int],
    cell: Cell,
    partner: Cell,
    hidden: set[Cell],
    *,
    cost: Callable[[Cell], int],
    bound: float,
) -> _Hypercube | None:
    """The hypercube of `cell` and `partner`; None if a corner is zero or it costs over `bound`."""
    # In a dimension where cell and partner are both categories, the partner's corners move
    # against the cell; where one of them is the total, with it.
    trades = [p != TOTAL and q != TOTAL for p, q in zip(cell, partner, strict=True)]
    with_cell = math.inf
    against_cell = math.inf
    corners: list[Cell] = []
    new_cost = 0
    new = 0
    for choice in itertools.product((False, True), repeat=len(cell)):
        corner = tuple(q if c else p for p, q, c in zip(cell, partner, choice, strict=True))
        n = table[corner]
        if n == 0:
            return None
        against = sum(1 for c, t in zip(choice, trades, strict=True) if c and t) % 2 == 1
        if against:
            against_cell = min(against_cell, n)
        else:
            with_cell = min(with_cell, n)
        if corner not in hidden:
            new_cost += cost(corner)
            new += 1
            if new_cost > bound:
                return None
        corners.append(corner)
    return _Hypercube(tuple(corners), with_cell + against_cell, new_cost, new)


# --- Differential privacy -------------------------------------------------------------------


class RandomSource(Protocol):
    """Uniform integers in [0, n): `secrets.SystemRandom()` in production."""

    def randrange(self, stop: int, /) -> int: ...


# The operating system's CSPRNG (os.urandom): noise an attacker cannot predict or replay.
SECURE_RANDOM: RandomSource = secrets.SystemRandom()


def sample_discrete_laplace(epsilon: Fraction, rng: RandomSource = SECURE_RANDOM) -> int:
    """An integer z with probability proportional to exp(-epsilon * |z|).

    Canonne, Kamath and Steinke (2020), "The Discrete Gaussian for Differential Privacy",
    algorithm 2: exact, in rational arithmetic on uniform integers, so it has none of the
    floating-point holes of sampling a continuous Laplace and rounding (Mironov 2012).
    """
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    # Scale 1/epsilon = t/s.
    s, t = epsilon.numerator, epsilon.denominator
    while True:
        u = rng.randrange(t)
        if not _bernoulli_exp(Fraction(u, t), rng):
            continue
        v = 0
        while _bernoulli_exp(Fraction(1), rng):
            v += 1
        magnitude = (u + t * v) // s
        negative = rng.randrange(2) == 1
        if negative and magnitude == 0:
            continue
        return -magnitude if negative else magnitude


def _bernoulli(p: Fraction, rng: RandomSource) -> bool:
    return rng.randrange(p.denominator) < p.numerator


def _bernoulli_exp(gamma: Fraction, rng: RandomSource) -> bool:
    """True with probability exp(-gamma), gamma >= 0, exactly."""
    while gamma > 1:
        if not _bernoulli_exp(Fraction(1), rng):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(gamma / k, rng):
        k += 1
    return k % 2 == 1


def noisy_counts(
    spec: TableSpec,
    counts: Mapping[Cell, int],
    *,
    epsilon: Fraction,
    rng: RandomSource = SECURE_RANDOM,
) -> dict[Cell, int]:
    """The interior counts with discrete Laplace noise of scale 1/epsilon, floored at zero.

    A person is counted in exactly one interior cell, so adding or removing one changes the
    interior by 1 (L1): the noisy interior is epsilon-differentially private, and margins
    summed from it, flooring, and suppression are post-processing that spend nothing more.
    """
    complete_table(spec, counts)  # the same validation as an exact table
    return {
        cell: max(0, counts.get(cell, 0) + sample_discrete_laplace(epsilon, rng))
        for cell in spec.interior_cells()
    }


def protect_noisy_table(
    spec: TableSpec,
    counts: Mapping[Cell, int],
    *,
    epsilon: Fraction,
    rng: RandomSource = SECURE_RANDOM,
    k: int = K_THRESHOLD,
) -> ProtectedTable:
    """The differentially private release of one table: noise first, then suppress the noise.

    Which cells are hidden is decided on the noisy counts only, so it reveals nothing the
    noise does not already cover. `primary` is also of the noisy counts.
    """
    return protect_table(spec, noisy_counts(spec, counts, epsilon=epsilon, rng=rng), k=k)
