"""k-anonymity of the CTDC export, pure: whatever the records, every published combination of
quasi-identifiers is shared by at least k of them, and nothing but the quasi-identifiers
and what follows from them is written."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.stats.anonymize import Hierarchy, k_anonymize, keep, smallest_group
from service.stats.ctdc import (
    EXPORT_COLUMNS,
    QUASI_IDENTIFIERS,
    export_csv,
    hierarchies,
    parse,
    quasi_identifiers,
)
from service.stats.rules import K_THRESHOLD

AGES = st.one_of(st.none(), st.integers(min_value=0, max_value=90))
persons = st.fixed_dictionaries(
    {
        "age": AGES,
        "gender": st.sampled_from(["female", "male", "non_binary", "unknown", None]),
        "nationality": st.sampled_from(["PER", "VEN", "COL", "BOL", "CHN", "NGA", None]),
        "country_of_exploitation": st.sampled_from(["PER", "ARG", "CHL", "USA", "ZAF"]),
        "sexual": st.booleans(),
        "labour": st.booleans(),
        "other": st.booleans(),
        "sector": st.sampled_from([None, "gold_mining", "logging", "agriculture", "factory"]),
    }
)


def _records(people: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [quasi_identifiers(year=2016, **p) for p in people]


@settings(max_examples=150, deadline=None)
@given(st.lists(persons, max_size=160))
def test_every_published_combination_is_shared_by_at_least_k_persons(
    people: list[dict[str, object]],
) -> None:
    records = _records(people)

    result = k_anonymize(records, hierarchies())

    published = Counter(tuple(r[q] for q in QUASI_IDENTIFIERS) for r in result.records)
    assert all(n >= K_THRESHOLD for n in published.values())
    assert len(result.records) + result.suppressed == len(records)
    # Read back as CTDC reads it: the rarest combination of the written columns too.
    rows = list(csv.DictReader(io.StringIO(export_csv(result.records))))
    assert len(rows) == len(result.records)
    written = [c for c in EXPORT_COLUMNS if c != "Datasource"]
    assert smallest_group(rows, written) >= K_THRESHOLD or not rows


@settings(max_examples=60, deadline=None)
@given(st.lists(persons, min_size=0, max_size=10))
def test_fewer_than_k_persons_export_nothing(people: list[dict[str, object]]) -> None:
    result = k_anonymize(_records(people), hierarchies())

    assert result.records == []
    assert result.suppressed == len(people)


def test_a_large_homogeneous_group_is_published_as_recorded() -> None:
    girls = [
        {"age": 15, "gender": "female", "nationality": "PER", "country_of_exploitation": "PER",
         "sexual": True, "labour": False, "other": False, "sector": None}
    ] * 30  # fmt: skip

    result = k_anonymize(_records(girls), hierarchies())

    assert result.suppressed == 0
    assert set(result.levels.values()) == {0}
    [row] = {tuple(r.items()) for r in result.records}
    assert dict(row)["age"] == "9--17"


def test_generalizes_before_leaving_out() -> None:
    # 12 girls aged 9 to 17 whose exact band is shared, but their nationalities split them.
    people = [
        {"age": 15, "gender": "female", "nationality": n, "country_of_exploitation": "PER",
         "sexual": True, "labour": False, "other": False, "sector": None}
        for n in ["PER"] * 6 + ["VEN"] * 6
    ]  # fmt: skip

    result = k_anonymize(_records(people), hierarchies())

    assert result.suppressed == 0
    assert result.levels["citizenship"] > 0
    assert {r["citizenship"] for r in result.records} == {"-99"}


def test_is_deterministic_and_sorted() -> None:
    hierarchy = (Hierarchy("x", (keep,)),)
    records = [{"x": v} for v in "baab" * 11]

    first = k_anonymize(records, hierarchy)

    assert first == k_anonymize(list(reversed(records)), hierarchy)
    assert [r["x"] for r in first.records] == ["a"] * 22 + ["b"] * 22


def test_export_reads_back_as_a_ctdc_file() -> None:
    people = [
        {"age": 25, "gender": "male", "nationality": "PER", "country_of_exploitation": "PER",
         "sexual": False, "labour": True, "other": False, "sector": "gold_mining"}
    ] * 11  # fmt: skip
    result = k_anonymize(_records(people), hierarchies())

    [first, *_] = parse(export_csv(result.records))

    assert first.year == 2016
    assert first.age_band is not None
    assert first.age_band.label == "24--26"
    assert (first.gender, first.citizenship, first.country_of_exploitation) == ("Male", "PE", "PE")
    assert first.exploitation == "Forced labour"
    assert first.other["typeOfLabourConcatenated"] == "Mining or drilling"
    assert first.other["isForcedLabour"] == "1"
    assert first.other["isSexualExploit"] == "0"
