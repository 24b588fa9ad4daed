"""`ruta stats report`: the annual report written from a published release, in every format,
with its charts and summary, and never a hidden number."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from service.identity.rules import Role
from service.stats.report import HIDDEN, QUESTIONS
from service.stats.rules import TOTAL
from tests.stats.conftest import World
from tests.support.cli import ruta
from tests.support.factories import SignedInUser, create_case, person_body

YEAR = 2016
PNG = b"\x89PNG\r\n\x1a\n"
# (key, row, column) -> the published value, or None when hidden.
Grid = dict[tuple[str, str, str], float | None]


async def _identify(world: World, user: SignedInUser, n: int, **fields: Any) -> None:
    person = fields.pop("person", {})
    for i in range(n):
        case = await create_case(
            world.client,
            user,
            identified_on=date(YEAR, 1 + i % 12, 7).isoformat(),
            person=person_body(**person),
            **fields,
        )
        consent = await world.client.post(
            f"/v1/cases/{case['id']}/consents",
            json={"purposes": ["statistics"], "language": "es"},
            headers=user.headers,
        )
        assert consent.status_code == 201, consent.text


@pytest.fixture(scope="module")
async def analyst(world: World) -> SignedInUser:
    """2016: 23 girls and 11 women in Madre de Dios, 4 women in Lima, 12 men in forced labour
    in Loreto."""
    police = await world.factory.user("PNP", Role.identifier)
    await _identify(world, police, 23, region="17")
    await _identify(world, police, 11, region="17", person={"age_estimate": 25})
    await _identify(world, police, 4, region="15", person={"age_estimate": 25})
    await _identify(
        world,
        police,
        12,
        region="16",
        exploitation=[{"form": "forced_labour", "sector": "logging"}],
        person={"age_estimate": 40, "gender": "male"},
    )
    return await world.factory.user("MIMP", Role.analyst)


def _report(world: World, analyst: SignedInUser, out: Path, fmt: str) -> dict[str, Any]:
    """Run the command; the release it published, as the API returns it."""
    done = ruta(
        world.settings,
        "stats",
        "report",
        "--year",
        str(YEAR),
        "--as",
        analyst.actor.username,
        "--format",
        fmt,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    [release_id] = re.findall(r"release ([0-9a-f-]{36})", done.stdout)
    return {"id": release_id, "stdout": done.stdout}


async def _release(world: World, analyst: SignedInUser, release_id: str) -> dict[str, Any]:
    response = await world.client.get(f"/v1/stats/releases/{release_id}", headers=analyst.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _expected(release: dict[str, Any]) -> Grid:
    """Each question's two-way view read straight from the release's cells: rows by the
    table's first dimension, columns by its second (unless the question names one), the
    others at their total."""
    grid: Grid = {}
    for question, table in zip(QUESTIONS, release["tables"], strict=True):
        names = [d["name"] for d in table["dimensions"]]
        row_name = names[0]
        column_name = names[1] if len(question.by) != 1 and len(names) > 1 else None
        for cell in table["cells"]:
            at = cell["coordinates"]
            if any(at[n] != TOTAL for n in names if n not in (row_name, column_name)):
                continue
            column = at[column_name] if column_name else TOTAL
            grid[(question.key, at[row_name], column)] = cell.get("value")
    return grid


def _number(text: str) -> float | None:
    return None if text == HIDDEN else float(text.replace(",", ""))


def _md_grid(text: str) -> Grid:
    grid: Grid = {}
    key, columns = "", list[str]()
    for line in text.splitlines():
        heading = re.match(r"### ([\w-]+):", line)
        if heading:
            key, columns = heading.group(1), []
        elif line.startswith("|") and key and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not columns:
                columns = cells[1:]
                continue
            for column, value in zip(columns, cells[1:], strict=True):
                if column != "rate per 100,000":
                    grid[(key, cells[0], column)] = _number(value)
    return grid


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.table = ""
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.table = dict(attrs).get("id") or ""
            self.rows[self.table] = []
        elif tag == "tr":
            self.rows[self.table].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[self.table][-1].append("".join(self.cell))
            self.cell = None


def _html_grid(text: str) -> Grid:
    parser = _Tables()
    parser.feed(text)
    grid: Grid = {}
    for key, rows in parser.rows.items():
        if key not in {q.key for q in QUESTIONS}:
            continue
        columns = rows[0][1:]
        for row in rows[1:]:
            for column, value in zip(columns, row[1:], strict=True):
                if column != "rate per 100,000":
                    grid[(key, row[0], column)] = _number(value)
    return grid


def _json_grid(text: str) -> Grid:
    grid: Grid = {}
    for section in json.loads(text)["sections"]:
        for q in section["questions"]:
            for cell in q["cells"]:
                assert ("value" in cell) != cell.get("suppressed", False)
                grid[(q["key"], cell["row"], cell["column"])] = cell.get("value")
    return grid


def _csv_grid(text: str) -> Grid:
    grid: Grid = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["row_dimension"] in ("units", "measure"):
            continue
        grid[(row["key"], row["row"], row["column"])] = _number(row["value"])
    return grid


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


PARSERS = {"md": _md_grid, "html": _html_grid, "json": _json_grid, "csv": _csv_grid}


@pytest.mark.parametrize("fmt", ["md", "json", "csv", "html"])
async def test_report_shows_exactly_the_released_numbers_and_hides_the_rest(
    world: World, analyst: SignedInUser, tmp_path: Path, fmt: str
) -> None:
    ran = _report(world, analyst, tmp_path, fmt)
    release = await _release(world, analyst, ran["id"])
    expected = _expected(release)

    report = tmp_path / f"report-{YEAR}.{fmt}"
    found = PARSERS[fmt](report.read_text(encoding="utf-8"))

    assert found == expected
    hidden = [k for k, v in expected.items() if v is None]
    # Lima's four women are below the threshold: hidden, never printed.
    assert ("V4", "15", TOTAL) in hidden
    assert expected[("V4", TOTAL, TOTAL)] == 50
    assert (tmp_path / f"summary-{YEAR}.{fmt}").stat().st_size > 0
    for chart in ("identified-by-region", "forms-by-age-band", "pathway"):
        assert (tmp_path / f"{chart}-{YEAR}.png").read_bytes().startswith(PNG)


async def test_report_summary_counts_each_person_once_and_hides_small_figures(
    world: World, analyst: SignedInUser, tmp_path: Path
) -> None:
    ran = _report(world, analyst, tmp_path, "json")
    expected = _expected(await _release(world, analyst, ran["id"]))

    summary = json.loads((tmp_path / f"summary-{YEAR}.json").read_text(encoding="utf-8"))

    figures = {f["figure"]: f.get("value") for f in summary["summary"]}
    stages = {s["stage"]: s.get("value") for s in summary["pathway"]}
    assert figures["Victims identified (each person once)"] == 50
    assert figures["of whom minors"] == expected[("V1", "minor", TOTAL)] == 23
    assert figures["of whom women and girls"] == expected[("V1", TOTAL, "female")] == 38
    # Nobody was referred, placed or defended, and no proceeding exists: zeros are shown.
    assert stages == {
        "identified": 50,
        "referred": 0,
        "placed in a shelter": 0,
        "defended (legal aid referral accepted)": 0,
        "defendants decided": 0,
    }


async def test_report_is_published_as_an_audited_release_in_the_name_of_the_analyst(
    world: World, analyst: SignedInUser, tmp_path: Path
) -> None:
    ran = _report(world, analyst, tmp_path, "md")

    events = await world.client.get("/v1/stats/releases", headers=analyst.headers)
    assert ran["id"] in {r["id"] for r in events.json()}
    verified = await world.client.post(
        f"/v1/stats/releases/{ran['id']}/verify", headers=analyst.headers
    )
    assert verified.json()["reproduced"] is True


async def test_report_refuses_a_user_who_may_not_read_statistics(
    world: World, tmp_path: Path
) -> None:
    police = await world.factory.user("PNP", Role.identifier)

    done = ruta(
        world.settings,
        "stats",
        "report",
        "--year",
        str(YEAR),
        "--as",
        police.actor.username,
        "--out",
        str(tmp_path),
    )

    assert done.returncode == 2
    assert "may not publish statistics" in done.stderr
    assert _files(tmp_path) == []
