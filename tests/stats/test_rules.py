"""Published tables' shapes, their margins, the threshold and the age bands."""

from __future__ import annotations

import pytest

from service.stats.rules import (
    CTDC_AGE_BANDS,
    PERU_AGE_BANDS,
    TOTAL,
    Dimension,
    TableSpec,
    age_band,
    below_threshold,
    complete_table,
    minor_category,
)

MINOR = Dimension("minor", ("minor", "adult"))
GENDER = Dimension("gender", ("female", "male"))
REGION = Dimension("region", ("15", "16", "17"))
FORM = Dimension("form", ("sex", "labour"))
SECTOR = Dimension("sector", ("mining", "logging"))


def test_counts_from_one_to_ten_are_hidden_and_zero_and_eleven_are_shown() -> None:
    assert [n for n in range(13) if below_threshold(n)] == list(range(1, 11))


def test_a_table_about_persons_needs_minor_and_gender() -> None:
    with pytest.raises(ValueError, match="minor and gender"):
        TableSpec("V", "victims/2016", (REGION, MINOR))


def test_a_table_crosses_at_most_two_dimensions_besides_minor_and_gender() -> None:
    TableSpec("V", "victims/2016", (REGION, FORM, MINOR, GENDER))
    with pytest.raises(ValueError, match="more than two"):
        TableSpec("V", "victims/2016", (REGION, FORM, SECTOR, MINOR, GENDER))
    with pytest.raises(ValueError, match="one or two"):
        TableSpec("P", "proceedings/2016", (REGION, FORM, SECTOR), about_persons=False)


def test_a_category_may_not_be_called_total() -> None:
    with pytest.raises(ValueError, match="margin"):
        Dimension("region", ("15", TOTAL))


def test_complete_table_adds_every_margin_and_the_grand_total() -> None:
    spec = TableSpec("RM", "victims/2016", (REGION, MINOR), about_persons=False)
    table = complete_table(spec, {("15", "minor"): 4, ("15", "adult"): 20, ("17", "adult"): 7})

    assert table[("15", TOTAL)] == 24
    assert table[("16", TOTAL)] == 0
    assert table[(TOTAL, "adult")] == 27
    assert table[(TOTAL, TOTAL)] == 31
    assert len(table) == 4 * 3


def test_complete_table_refuses_a_margin_or_a_negative_count_as_input() -> None:
    spec = TableSpec("R", "victims/2016", (REGION,), about_persons=False)
    with pytest.raises(ValueError, match="not interior"):
        complete_table(spec, {(TOTAL,): 3})
    with pytest.raises(ValueError, match="negative"):
        complete_table(spec, {("15",): -1})


def test_one_cell_shared_by_two_tables_has_one_key() -> None:
    by_region = TableSpec("R1", "victims/2016", (REGION,), about_persons=False)
    by_region_and_minor = TableSpec("RM", "victims/2016", (REGION, MINOR), about_persons=False)
    other_year = TableSpec("R1", "victims/2017", (REGION,), about_persons=False)

    assert by_region.shared_key(("15",)) == by_region_and_minor.shared_key(("15", TOTAL))
    assert by_region.shared_key((TOTAL,)) == by_region_and_minor.shared_key((TOTAL, TOTAL))
    assert by_region.shared_key(("15",)) != other_year.shared_key(("15",))


@pytest.mark.parametrize(
    ("age", "band"),
    [(0, "0-13"), (13, "0-13"), (14, "14-17"), (17, "14-17"), (18, "18-29"), (30, "30+")],
)
def test_peru_bands_follow_article_153s_ages(age: int, band: str) -> None:
    assert age_band(age, PERU_AGE_BANDS) == band


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (8, "0--8"),
        (9, "9--17"),
        (17, "9--17"),
        (18, "18--20"),
        (29, "27--29"),
        (38, "30--38"),
        (47, "39--47"),
        (48, "48+"),
        (90, "48+"),
    ],
)
def test_ctdc_bands_use_ctdcs_labels(age: int, band: str) -> None:
    assert age_band(age, CTDC_AGE_BANDS) == band


def test_every_age_falls_in_exactly_one_band() -> None:
    for bands in (PERU_AGE_BANDS, CTDC_AGE_BANDS):
        for age in range(120):
            holding = [b for b in bands if b.lowest <= age <= (b.highest or age)]
            assert len(holding) == 1, (age, holding)


def test_an_unknown_age_is_its_own_category() -> None:
    assert age_band(None) == "unknown"
    assert minor_category(None) == "unknown"
    assert (minor_category(17), minor_category(18)) == ("minor", "adult")
