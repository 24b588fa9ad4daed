"""CTDC files read as they come (a terms-of-use line or column, `;` or `,`, -99 for what is
not known, "0--8" age bands) and `ruta stats import-ctdc` keeping them apart from cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.identity.rules import Role
from service.stats.ctdc import AgeBand, CtdcFormatError, parse, parse_age_band
from tests.stats.conftest import World
from tests.support.cli import ruta
from tests.support.databases import query

FIXTURES = Path(__file__).parent / "fixtures"


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_reads_a_file_whose_first_column_states_the_terms_of_use() -> None:
    rows = parse(_read("ctdc-terms-column.csv"))

    assert [r.line for r in rows] == [2, 3, 4, 5]
    girl, man, child, unknown_year = rows
    assert (girl.year, girl.gender, girl.age_band, girl.citizenship) == (
        2016,
        "Female",
        AgeBand("9--17", 9, 17),
        "PE",
    )
    assert girl.other["majorityEntry"] is None  # -99
    assert man.other["typeOfLabourConcatenated"] == "Mining or drilling"
    assert child.age_band == AgeBand("0--8", 0, 8)
    assert child.citizenship is None
    assert child.exploitation is None
    assert unknown_year.year is None
    assert unknown_year.gender is None
    assert unknown_year.age_band == AgeBand("48+", 48, None)
    # The terms column is not a field of any row.
    assert all(not any("terms" in k.lower() for k in r.other) for r in rows)


def test_reads_a_semicolon_file_after_a_terms_of_use_line() -> None:
    rows = parse(_read("ctdc-terms-line-semicolon.csv"))

    assert [r.line for r in rows] == [3, 4, 5]
    assert [(r.year, r.country_of_exploitation) for r in rows] == [
        (2016, "AR"),
        (2017, "PE"),
        (2017, None),
    ]
    # "9-17" is read as CTDC's "9--17"; an empty field is as unknown as -99.
    assert rows[1].age_band == AgeBand("9--17", 9, 17)
    assert rows[2].gender is None
    assert rows[2].age_band is None


def test_refuses_an_age_band_it_cannot_read_naming_line_and_column() -> None:
    with pytest.raises(CtdcFormatError) as refused:
        parse(_read("ctdc-bad-age-band.csv"))

    assert refused.value.where == "line 2, ageBroad"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("gender,ageBroad\nFemale,0--8\n", "no column yearOfRegistration"),
        ("yearOfRegistration,gender\n2016,Female,extra\n", "3 fields where the header has 2"),
        ("yearOfRegistration,gender\nsoon,Female\n", "'soon' is not a year"),
        ("", "no header with yearOfRegistration"),
    ],
)
def test_refuses_files_that_are_not_ctdc(text: str, reason: str) -> None:
    with pytest.raises(CtdcFormatError) as refused:
        parse(text)

    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("text", "band"),
    [
        ("0--8", AgeBand("0--8", 0, 8)),
        ("18-20", AgeBand("18--20", 18, 20)),
        (" 48+ ", AgeBand("48+", 48, None)),
    ],
)
def test_reads_ctdc_age_bands(text: str, band: AgeBand) -> None:
    assert parse_age_band(text) == band


async def test_import_keeps_the_file_apart_from_cases_and_refuses_the_same_name_twice(
    world: World,
) -> None:
    path = FIXTURES / "ctdc-terms-column.csv"
    analyst = await world.factory.user("MIMP", Role.analyst)
    before = await world.client.get("/v1/stats/tables/V1?year=2016", headers=analyst.headers)

    done = ruta(world.settings, "stats", "import-ctdc", str(path), "--name", "global-2020")
    again = ruta(world.settings, "stats", "import-ctdc", str(path), "--name", "global-2020")

    assert done.returncode == 0, done.stderr
    assert "imported 4 CTDC records as dataset 'global-2020', 2015 to 2016" in done.stdout
    assert again.returncode == 2
    assert "already imported" in again.stderr
    records = await query(
        world.db,
        "SELECT r.line, r.year, r.gender, r.age_band, r.age_lowest, r.age_highest"
        " FROM ctdc_record r JOIN ctdc_dataset d ON d.id = r.dataset_id"
        " WHERE d.name = 'global-2020' ORDER BY r.line",
    )
    assert records == [
        (2, 2016, "Female", "9--17", 9, 17),
        (3, 2016, "Male", "30--38", 30, 38),
        (4, 2015, "Female", "0--8", 0, 8),
        (5, None, None, "48+", 48, None),
    ]
    [(source, count)] = await query(
        world.db, "SELECT source, records FROM ctdc_dataset WHERE name = 'global-2020'"
    )
    assert (source, count) == ("ctdc-terms-column.csv", 4)
    audited = await query(
        world.db, "SELECT count(*) FROM audit_event WHERE action = 'stats.ctdc_imported'"
    )
    assert audited == [(1,)]
    # Imported victims are not Ruta's: the published tables do not change.
    after = await world.client.get("/v1/stats/tables/V1?year=2016", headers=analyst.headers)
    assert after.json()["cells"] == before.json()["cells"]


async def test_import_of_a_malformed_file_writes_nothing(world: World) -> None:
    done = ruta(world.settings, "stats", "import-ctdc", str(FIXTURES / "ctdc-bad-age-band.csv"))

    assert done.returncode == 2
    assert "line 2, ageBroad: 'teen' is not an age band" in done.stderr
    assert await query(
        world.db, "SELECT count(*) FROM ctdc_dataset WHERE name = 'ctdc-bad-age-band'"
    ) == [(0,)]
