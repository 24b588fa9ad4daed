"""The interval audit: what an intruder can infer about each hidden cell of a release.

For every hidden cell, linear programming (scipy's HiGHS) finds the least and the greatest
value the cell can take given everything published: the shown cells, every margin equation
of every table, the same number wherever two tables of the release publish it, and counts
that are never negative. A release is safe when every such range is at least k wide.

A verification tool, not part of publishing: it needs scipy (the `test` extra) and is used by
the tests and by an audit command; the suppression in `service.stats.disclosure` does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_array

from service.stats.disclosure import ProtectedTable
from service.stats.rules import K_THRESHOLD, TOTAL, Cell, SharedKey


@dataclass(frozen=True)
class Interval:
    """The feasible range of one hidden cell; `high` is infinite when nothing bounds it."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class AuditedCell:
    table: str
    cell: Cell
    interval: Interval


def audit_release(tables: Sequence[ProtectedTable]) -> list[AuditedCell]:
    """The feasible range of every hidden cell of a release, from its published numbers only."""
    variables: dict[SharedKey, int] = {}
    for t in tables:
        for cell, published in t.cells.items():
            if published.suppressed:
                variables.setdefault(t.spec.shared_key(cell), len(variables))
    rows: list[dict[int, float]] = []
    rhs: list[float] = []
    for t in tables:
        for cell in t.cells:
            for d, dimension in enumerate(t.spec.dimensions):
                if cell[d] != TOTAL:
                    continue
                # cell = sum of its categories along dimension d
                parts = [(*cell[:d], c, *cell[d + 1 :]) for c in dimension.categories]
                row: dict[int, float] = {}
                known = 0.0
                for sign, term in [(1.0, cell)] + [(-1.0, p) for p in parts]:
                    value = t.cells[term].value
                    if value is None:
                        j = variables[t.spec.shared_key(term)]
                        row[j] = row.get(j, 0.0) + sign
                    else:
                        known += sign * value
                if row:
                    rows.append(row)
                    rhs.append(-known)
    if not variables:
        return []
    a_eq = _sparse(rows, len(variables))
    b_eq = np.array(rhs)
    ranges: dict[int, Interval] = {}
    for j in range(len(variables)):
        objective = np.zeros(len(variables))
        objective[j] = 1.0
        low = _optimum(objective, a_eq, b_eq)
        high = _optimum(-objective, a_eq, b_eq)
        ranges[j] = Interval(low, -high)
    return [
        AuditedCell(t.spec.name, cell, ranges[variables[t.spec.shared_key(cell)]])
        for t in tables
        for cell, published in t.cells.items()
        if published.suppressed
    ]


def narrow_cells(tables: Sequence[ProtectedTable], *, k: int = K_THRESHOLD) -> list[AuditedCell]:
    """The hidden cells an intruder can pin down to fewer than k values: empty when safe."""
    # A hair of tolerance: HiGHS answers in floating point.
    return [a for a in audit_release(tables) if a.interval.width < k - 1e-6]


def _sparse(rows: list[dict[int, float]], width: int) -> csr_array:
    data = [v for row in rows for v in row.values()]
    columns = [j for row in rows for j in row]
    row_index = [i for i, row in enumerate(rows) for _ in row]
    return csr_array((data, (row_index, columns)), shape=(len(rows), width))


def _optimum(objective: np.ndarray, a_eq: csr_array, b_eq: np.ndarray) -> float:
    result = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if result.status == 3:  # unbounded
        return -math.inf
    if result.status != 0:
        raise RuntimeError(f"interval audit: linear program failed: {result.message}")
    return float(result.fun)
