"""`ruta stats export-ctdc`: the year's counted persons, each once, as CTDC microdata in which
every combination of quasi-identifiers is shared by at least 11 persons, and nothing else
about them."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from service.identity.rules import Role
from service.stats.ctdc import EXPORT_COLUMNS, parse
from service.stats.rules import K_THRESHOLD
from tests.stats.conftest import World
from tests.support.cli import ruta
from tests.support.databases import query
from tests.support.factories import SignedInUser, create_case, person_body

YEAR = 2016


async def _case(
    world: World, user: SignedInUser, person: dict[str, Any], *purposes: str
) -> dict[str, Any]:
    case = await create_case(
        world.client, user, identified_on=date(YEAR, 5, 3).isoformat(), person=person
    )
    consent = await world.client.post(
        f"/v1/cases/{case['id']}/consents",
        json={"purposes": list(purposes), "language": "es"},
        headers=user.headers,
    )
    assert consent.status_code == 201, consent.text
    return case


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def test_export_is_k_anonymous_counts_each_person_once_and_carries_nothing_identifying(
    world: World, tmp_path: Path
) -> None:
    police = await world.factory.user("PNP", Role.identifier)
    mimp = await world.factory.user("MIMP", Role.caseworker)
    analyst = await world.factory.user("MIMP", Role.analyst)
    girls = [person_body() for _ in range(22)]
    cases = [await _case(world, police, girl, "statistics") for girl in girls]
    # One of the girls is identified again by MIMP: still one person.
    again = await _case(world, mimp, girls[0], "statistics")
    women = [person_body(age_estimate=25, nationality="VEN") for _ in range(5)]
    cases += [await _case(world, police, woman, "statistics") for woman in women]
    # Three whose consent does not cover statistics: never exported.
    services_only = [person_body(age_estimate=30, gender="male") for _ in range(3)]
    cases += [await _case(world, police, p, "services") for p in services_only]
    out = tmp_path / "ctdc.csv"

    done = ruta(
        world.settings,
        "stats",
        "export-ctdc",
        "--year",
        str(YEAR),
        "--as",
        analyst.actor.username,
        "--out",
        str(out),
    )

    assert done.returncode == 0, done.stderr
    assert again["person_id"] == cases[0]["person_id"]
    [(records, left_out)] = re.findall(r"(\d+) records, (\d+) left out", done.stdout)
    assert int(records) + int(left_out) == 27  # 22 girls once, 5 women; not the 3
    text = _read(out)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert len(rows) == int(records) >= 22
    groups = Counter(tuple(r.values()) for r in rows)
    assert min(groups.values()) >= K_THRESHOLD
    # Nothing a person could be found by: names, documents, case or person ids.
    for person, case in zip([*girls, *women, *services_only], cases, strict=True):
        assert person["family_name"] not in text
        assert person["document"]["number"] not in text
        assert case["id"] not in text
        assert case["person_id"] not in text
    assert parse(text)[0].year == YEAR
    audited = await query(
        world.db,
        "SELECT actor_user_id FROM audit_event WHERE action = 'stats.ctdc_exported'",
    )
    assert [uuid.UUID(str(a)) for (a,) in audited] == [analyst.actor.user_id]


async def test_export_refuses_a_role_that_may_not_read_statistics(
    world: World, tmp_path: Path
) -> None:
    police = await world.factory.user("PNP", Role.identifier)

    done = ruta(
        world.settings,
        "stats",
        "export-ctdc",
        "--year",
        str(YEAR),
        "--as",
        police.actor.username,
        "--out",
        str(tmp_path / "ctdc.csv"),
    )

    assert done.returncode == 2
    assert "may not publish statistics" in done.stderr
