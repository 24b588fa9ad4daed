"""Suppression proven by the interval audit: no hidden count can be narrowed below 11 values.

Every protected table here goes through `narrow_cells`, which solves, for every hidden cell,
the least and greatest value it can take given everything published (HiGHS linear programs).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction

import pytest
from scipy import stats as scipy_stats

from service.stats.audit import audit_release, narrow_cells
from service.stats.disclosure import (
    ProtectedTable,
    PublishedCell,
    TableCounts,
    noisy_counts,
    protect_noisy_table,
    protect_release,
    protect_table,
    sample_discrete_laplace,
)
from service.stats.rules import (
    K_THRESHOLD,
    PERU_AGE_BANDS,
    TOTAL,
    Cell,
    Dimension,
    TableSpec,
    complete_table,
)

MEASURE = "victims_identified/2016"
REGION = Dimension("region", tuple(f"{code:02d}" for code in range(1, 26)))
MINOR = Dimension("minor", ("minor", "adult"))
GENDER = Dimension("gender", ("female", "male", "unknown"))
AGE_BAND = Dimension("age_band", tuple(b.label for b in PERU_AGE_BANDS))
FORM = Dimension("form", ("sex", "labour", "criminality", "recruitment", "sex_tourism"))
SECTOR = Dimension("sector", ("none", "gold_mining", "logging", "agriculture", "domestic"))

# Skewed like the narrative: Lima (15), Loreto (16) and Madre de Dios (17) hold most victims.
BIG_REGIONS = {"15": 400, "16": 120, "17": 150}


def assert_safely_published(
    tables: Sequence[ProtectedTable], truths: Sequence[TableCounts]
) -> None:
    """Small counts hidden, zeros and every shown number true, and the audit finds no leak."""
    for protected, truth in zip(tables, truths, strict=True):
        table = complete_table(truth.spec, truth.counts)
        for cell, n in table.items():
            published = protected.cells[cell]
            if 0 < n < K_THRESHOLD:
                assert published.suppressed, (truth.spec.name, cell, n)
            elif n == 0:
                assert published.value == 0, (truth.spec.name, cell)
            elif not published.suppressed:
                assert published.value == n
    audited = audit_release(tables)
    truth_of = {
        (t.spec.name, cell): n
        for t in truths
        for cell, n in complete_table(t.spec, t.counts).items()
    }
    for a in audited:
        # The audit's range holds the true count: its equations are the tables' own.
        assert a.interval.low - 1e-6 <= truth_of[(a.table, a.cell)] <= a.interval.high + 1e-6
    assert [a for a in audited if a.interval.width < K_THRESHOLD - 1e-6] == []


def protect(spec: TableSpec, counts: Mapping[Cell, int]) -> ProtectedTable:
    protected = protect_table(spec, counts)
    assert_safely_published([protected], [TableCounts(spec, counts)])
    return protected


def grid(rows: Sequence[Sequence[int]]) -> tuple[TableSpec, dict[Cell, int]]:
    """A two-way table written as rows of counts."""
    spec = TableSpec(
        "grid",
        MEASURE,
        (
            Dimension("row", tuple(f"r{i}" for i in range(len(rows)))),
            Dimension("column", tuple(f"c{j}" for j in range(len(rows[0])))),
        ),
        about_persons=False,
    )
    counts: dict[Cell, int] = {
        (f"r{i}", f"c{j}"): n for i, row in enumerate(rows) for j, n in enumerate(row)
    }
    return spec, counts


# --- The audit itself ------------------------------------------------------------------------


def test_the_audit_recovers_a_small_cell_hidden_alone_in_its_row() -> None:
    spec, counts = grid([[5, 40, 50], [30, 60, 70]])
    table = complete_table(spec, counts)
    only_primary = ProtectedTable(
        spec=spec,
        cells={c: PublishedCell(None if c == ("r0", "c0") else n) for c, n in table.items()},
        primary=frozenset({("r0", "c0")}),
    )

    [audited] = audit_release([only_primary])

    assert (audited.interval.low, audited.interval.high) == pytest.approx((5, 5))
    assert narrow_cells([only_primary]) == [audited]


def test_the_audit_finds_the_narrow_range_of_two_small_cells_hiding_each_other() -> None:
    # Both small cells of a row hidden: each is 0 to 7 (their sum, 7, is published).
    spec, counts = grid([[3, 4, 50], [30, 60, 70]])
    table = complete_table(spec, counts)
    hidden = {("r0", "c0"), ("r0", "c1"), ("r1", "c0"), ("r1", "c1")}
    protected = ProtectedTable(
        spec=spec,
        cells={c: PublishedCell(None if c in hidden else n) for c, n in table.items()},
        primary=frozenset({("r0", "c0"), ("r0", "c1")}),
    )

    ranges = {a.cell: (a.interval.low, a.interval.high) for a in audit_release([protected])}

    assert ranges[("r0", "c0")] == pytest.approx((0, 7))
    assert ranges[("r1", "c1")] == pytest.approx((57, 64))


# --- Hard cases ------------------------------------------------------------------------------


def test_a_single_small_cell_in_a_row_takes_a_partner_in_its_row_and_its_column() -> None:
    spec, counts = grid([[5, 40, 50], [30, 60, 70]])

    protected = protect(spec, counts)

    assert protected.primary == {("r0", "c0")}
    in_row = [c for c in protected.suppressed if c[0] == "r0" and c[1] != TOTAL]
    in_column = [c for c in protected.suppressed if c[1] == "c0" and c[0] != TOTAL]
    assert len(in_row) >= 2
    assert len(in_column) >= 2
    assert protected.cells[(TOTAL, TOTAL)].value == 255


def test_zeros_beside_a_small_cell_stay_shown_and_the_margins_are_hidden_instead() -> None:
    spec, counts = grid([[3, 0, 0], [0, 0, 40], [0, 25, 30]])

    protected = protect(spec, counts)

    assert all(protected.cells[c].value == 0 for c, n in counts.items() if n == 0)
    assert protected.cells[("r0", TOTAL)].suppressed
    assert protected.cells[(TOTAL, "c0")].suppressed


def test_a_row_of_small_cells_hides_the_row_total_below_eleven() -> None:
    spec, counts = grid([[2, 3, 4], [30, 40, 50], [20, 25, 35]])

    protected = protect(spec, counts)

    assert protected.cells[("r0", TOTAL)].suppressed
    assert not protected.cells[(TOTAL, TOTAL)].suppressed


def test_a_table_of_tiny_totals_shows_only_its_zeros() -> None:
    spec, counts = grid([[1, 2], [4, 0]])

    protected = protect(spec, counts)

    assert {c: p.value for c, p in protected.cells.items() if not p.suppressed} == {("r1", "c1"): 0}


def test_a_one_way_table_hides_a_partner_rather_than_its_total() -> None:
    spec = TableSpec("R", MEASURE, (Dimension("region", ("15", "16", "17")),), about_persons=False)

    protected = protect(spec, {("15",): 5, ("16",): 100, ("17",): 200})

    assert protected.suppressed == {("15",), ("16",)}
    assert protected.cells[(TOTAL,)].value == 305


def test_published_cells_read_as_value_or_suppressed() -> None:
    spec = TableSpec("R", MEASURE, (Dimension("region", ("15", "16", "17")),), about_persons=False)
    protected = protect_table(spec, {("15",): 5, ("16",): 0, ("17",): 200})

    assert protected.published() == [
        {"coordinates": {"region": "15"}, "suppressed": True},
        {"coordinates": {"region": "16"}, "value": 0},
        {"coordinates": {"region": "17"}, "suppressed": True},
        {"coordinates": {"region": TOTAL}, "value": 205},
    ]


# --- The catalogue ---------------------------------------------------------------------------


def victims(rng: random.Random, *dimensions: Dimension) -> dict[Cell, int]:
    """Counts skewed like the narrative's: a few big regions and forms, many small cells."""
    counts: dict[Cell, int] = {}
    for cell in itertools.product(*(d.categories for d in dimensions)):
        scale = 1.0
        for d, value in zip(dimensions, cell, strict=True):
            if d is REGION:
                scale *= BIG_REGIONS.get(value, rng.choice([2, 8, 20])) / 60
            if d is AGE_BAND and value == "0-13":
                scale *= 0.3
            if d is GENDER and value == "unknown":
                scale *= 0.05
        counts[cell] = round(rng.expovariate(1 / (30 * scale))) if rng.random() > 0.2 else 0
    return counts


def test_victims_by_region_minor_and_gender_are_published_safely() -> None:
    spec = TableSpec("V4", MEASURE, (REGION, MINOR, GENDER))

    protected = protect(spec, victims(random.Random(2016), REGION, MINOR, GENDER))

    assert protected.primary


def test_victims_by_age_band_with_structural_zeros_are_published_safely() -> None:
    # A child's band is never "adult": the zeros the bands impose sit beside small cells.
    spec = TableSpec("A", MEASURE, (AGE_BAND, MINOR, GENDER))
    counts = victims(random.Random(17), AGE_BAND, MINOR, GENDER)
    for band, minor, gender in list(counts):
        child_band = band in {"0-13", "14-17"}
        if child_band != (minor == "minor"):
            counts[(band, minor, gender)] = 0

    protect(spec, counts)


def test_victims_by_form_and_sector_are_published_safely() -> None:
    spec = TableSpec("F", MEASURE, (FORM, SECTOR, MINOR, GENDER))

    protect(spec, victims(random.Random(153), FORM, SECTOR, MINOR, GENDER))


# --- Random tables ---------------------------------------------------------------------------

POOLS = (
    (0, 1, 2, 3),  # everything small
    (0, 0, 1, 5, 10, 11, 12),  # zeros beside small cells, counts at the threshold
    (0, 1, 2, 3, 20, 50, 200),  # a few large cells carry the protection
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),  # no zero at all
)


@pytest.mark.parametrize("seed", range(4))
def test_random_two_way_tables_are_published_safely(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(30):
        width = rng.randint(1, 6)
        rows = [[rng.choice(POOLS[seed]) for _ in range(width)] for _ in range(rng.randint(1, 6))]
        protect(*grid(rows))


@pytest.mark.parametrize("seed", range(4))
def test_random_person_tables_of_three_and_four_dimensions_are_published_safely(seed: int) -> None:
    rng = random.Random(100 + seed)
    for _ in range(6):
        subject = [
            Dimension(name, tuple(f"{name}{i}" for i in range(rng.randint(1, 3))))
            for name in ("place", "form")[: rng.randint(1, 2)]
        ]
        dimensions = (*subject, MINOR, Dimension("gender", ("female", "male")))
        spec = TableSpec("P", MEASURE, dimensions)
        pool = POOLS[rng.randrange(len(POOLS))]
        protect(spec, {cell: rng.choice(pool) for cell in spec.interior_cells()})


# --- Linked tables of one release ------------------------------------------------------------


def release_of(rng: random.Random, regions: Dimension, pool: Sequence[int]) -> list[TableCounts]:
    """By region and minor and gender (V4), by region (R1), by form and minor and gender (F),
    and by region and form (RF, not about persons): margins of one set of persons."""
    forms = Dimension("form", ("sex", "labour", "criminality"))
    gender = Dimension("gender", ("female", "male"))
    persons = {
        (r, f, m, g): rng.choice(pool)
        for r, f, m, g in itertools.product(
            regions.categories, forms.categories, MINOR.categories, gender.categories
        )
    }

    def by(*kept: int) -> dict[Cell, int]:
        counts: dict[Cell, int] = {}
        for key, n in persons.items():
            cell = tuple(key[i] for i in kept)
            counts[cell] = counts.get(cell, 0) + n
        return counts

    return [
        TableCounts(TableSpec("V4", MEASURE, (regions, MINOR, gender)), by(0, 2, 3)),
        TableCounts(TableSpec("R1", MEASURE, (regions,), about_persons=False), by(0)),
        TableCounts(TableSpec("F", MEASURE, (forms, MINOR, gender)), by(1, 2, 3)),
        TableCounts(TableSpec("RF", MEASURE, (regions, forms), about_persons=False), by(0, 1)),
    ]


def assert_linked_release_safe(tables: list[TableCounts]) -> list[ProtectedTable]:
    protected = protect_release(tables)
    hidden_by_key: dict[object, set[bool]] = {}
    for p in protected:
        for cell, published in p.cells.items():
            hidden_by_key.setdefault(p.spec.shared_key(cell), set()).add(published.suppressed)
    assert all(len(fates) == 1 for fates in hidden_by_key.values())
    assert_safely_published(protected, tables)
    return protected


def test_a_margin_two_tables_publish_is_hidden_in_both_and_the_release_audited_as_one() -> None:
    regions = Dimension("region", ("15", "16", "17", "25"))
    tables = release_of(random.Random(4), regions, (0, 1, 2, 3, 20, 50))

    protected = assert_linked_release_safe(tables)

    v4, r1 = protected[0], protected[1]
    assert r1.suppressed
    assert {(r, TOTAL, TOTAL) for (r,) in r1.suppressed} <= v4.suppressed


@pytest.mark.parametrize("seed", range(3))
def test_random_linked_releases_are_published_safely(seed: int) -> None:
    rng = random.Random(200 + seed)
    for _ in range(3):
        regions = Dimension("region", tuple(f"{i:02d}" for i in range(1, rng.randint(3, 5))))
        assert_linked_release_safe(release_of(rng, regions, POOLS[seed]))


def test_tables_that_count_one_cell_differently_are_refused() -> None:
    regions = Dimension("region", ("15", "16"))
    r1 = TableSpec("R1", MEASURE, (regions,), about_persons=False)
    rm = TableSpec("RM", MEASURE, (regions, MINOR), about_persons=False)

    with pytest.raises(ValueError, match="differently"):
        protect_release(
            [
                TableCounts(r1, {("15",): 30, ("16",): 40}),
                TableCounts(rm, {("15", "minor"): 10, ("15", "adult"): 21, ("16", "adult"): 40}),
            ]
        )


# --- Differential privacy --------------------------------------------------------------------


def test_discrete_laplace_samples_follow_exp_of_minus_epsilon_times_size() -> None:
    epsilon = Fraction(1, 2)
    rng = random.Random(9)
    samples = [sample_discrete_laplace(epsilon, rng) for _ in range(6000)]

    # P(z) = (1 - e^-eps) / (1 + e^-eps) * e^(-eps |z|); the tails past 6 pooled.
    r = float(scipy_stats.dlaplace.pmf(0, float(epsilon)))
    assert r == pytest.approx((1 - 2.718281828**-0.5) / (1 + 2.718281828**-0.5))
    support = range(-6, 7)
    expected = [scipy_stats.dlaplace.pmf(z, float(epsilon)) * len(samples) for z in support]
    observed = [samples.count(z) for z in support]
    expected.append(len(samples) - sum(expected))
    observed.append(len(samples) - sum(observed))
    assert scipy_stats.chisquare(observed, expected).pvalue > 0.001


def test_epsilon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        sample_discrete_laplace(Fraction(0))


def test_noisy_release_hides_what_is_small_after_noise_never_before() -> None:
    spec = TableSpec("R", MEASURE, (REGION,), about_persons=False)
    counts: dict[Cell, int] = {(code,): 5 if code < "13" else 40 for code in REGION.categories}
    epsilon = Fraction(1, 4)

    noisy = complete_table(spec, noisy_counts(spec, counts, epsilon=epsilon, rng=random.Random(3)))
    protected = protect_noisy_table(spec, counts, epsilon=epsilon, rng=random.Random(3))

    assert protected.primary == {c for c, n in noisy.items() if 0 < n < K_THRESHOLD}
    # Some true 5s are shown (noise took them past 10), some 40s hidden: the noise decides.
    assert any(not protected.cells[(c,)].suppressed for c in REGION.categories if c < "13")
    assert all(p.value in (None, noisy[c]) for c, p in protected.cells.items())
    assert narrow_cells([protected]) == []


def test_tables_that_split_a_dimension_differently_are_refused() -> None:
    r1 = TableSpec("R1", MEASURE, (Dimension("region", ("15", "16")),), about_persons=False)
    r2 = TableSpec("R2", MEASURE, (Dimension("region", ("15", "17")),), about_persons=False)

    with pytest.raises(ValueError, match="split 'region' differently"):
        protect_release([TableCounts(r1, {("15",): 30}), TableCounts(r2, {("15",): 30})])
