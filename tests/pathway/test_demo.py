"""`ruta demo generate`: synthetic cases through the services, in the narrative's proportions,
never a bed beyond capacity, an audit trail that verifies, the same facts for the same seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench.stats_report import clone_cases
from service.audit import service as audit_service
from service.capacity import service as capacity_service
from service.capacity.schemas import CapacityChange
from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import audit_keys, open_database
from service.pathway import demo
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_table
from tests.support.databases import (
    create_database,
    drop_database,
    make_settings,
    migrate_and_seed,
    query,
)
from tests.support.factories import Factory

YEAR = demo.default_year()
CASES = 60

# The non-identifying facts: each identification (who, when, where, the person), its forms of
# exploitation, the consent, the referrals and the defendants.
FACTS = (
    "SELECT i.identified_on, o.code, i.region, i.exploitation_country, i.context, i.person_age,"
    " p.gender, p.nationality, p.age_at_identification FROM identification i"
    " JOIN organization o ON o.id = i.organization_id JOIN person p ON p.id = i.person_id",
    "SELECT i.identified_on, i.person_age, e.form, e.sector FROM identification_exploitation e"
    " JOIN identification i ON i.id = e.identification_id",
    "SELECT i.identified_on, i.person_age, c.refused, c.covers_statistics FROM consent c"
    " JOIN identification i ON i.case_id = c.case_id",
    "SELECT i.identified_on, i.person_age, o.code, r.purpose, r.status FROM referral r"
    " JOIN identification i ON i.case_id = r.case_id JOIN organization o ON o.id = r.to_org_id",
    "SELECT charge_filed, outcome, charge, sentence_months FROM defendant",
)


@dataclass(frozen=True)
class Generated:
    db: Database
    settings: Settings
    report: demo.DemoReport


async def _generate(var_dir: Path, *, cases: int, seed: int, beds: int | None) -> Generated:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    await migrate_and_seed(settings)
    db = open_database(settings)
    security = Security.from_settings(settings)
    if beds is not None:
        # Few beds, so that the overflow must wait or be an unmet need.
        admin = (await Factory(db, security).user("MIMP", Role.admin)).actor
        async with db.session() as session:
            for facility in await capacity_service.list_facilities(session, actor=admin):
                await capacity_service.change_capacity(
                    session,
                    actor=admin,
                    facility_id=facility.id,
                    data=CapacityChange(capacity=beds, reason="demo test: scarce beds"),
                )
    report = await demo.generate(
        db, security=security, settings=settings, cases=cases, seed=seed, year=YEAR
    )
    return Generated(db, settings, report)


@pytest.fixture(scope="module")
async def generated(var_dir: Path) -> AsyncIterator[Generated]:
    world = await _generate(var_dir, cases=CASES, seed=2016, beds=1)
    yield world
    await world.db.dispose()
    await drop_database(world.settings.database_url)


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in rows)


async def test_follows_the_narratives_proportions_roughly(generated: Generated) -> None:
    rows = await query(
        generated.db,
        "SELECT o.code, i.person_age, p.gender, p.nationality, i.region"
        " FROM identification i JOIN organization o ON o.id = i.organization_id"
        " JOIN person p ON p.id = i.person_id",
    )
    persons = await query(generated.db, "SELECT count(DISTINCT person_id) FROM identification")
    institutions = Counter(r[0] for r in rows)
    children = sum(1 for r in rows if r[1] < 18)

    assert generated.report.cases == CASES
    assert persons == [(CASES,)]  # a second identification is the same person, not another
    assert len(rows) == CASES + generated.report.persons_identified_twice
    assert generated.report.persons_identified_twice >= 1
    assert institutions.most_common(1)[0][0] == "PNP"
    assert 0.05 <= children / len(rows) <= 0.40  # about 216 of 1,134
    assert sum(1 for r in rows if r[2] == "female") > len(rows) / 2
    assert {r[3] for r in rows} > {"PER"}  # foreigners too
    assert Counter(r[4] for r in rows).most_common(2)[0][0] in {"17", "15"}
    outcomes = await query(generated.db, "SELECT outcome FROM defendant")
    assert "ongoing" in {o for (o,) in outcomes}


async def test_never_puts_more_persons_in_a_facility_than_it_has_beds(
    generated: Generated,
) -> None:
    # At every moment a stay began, the stays going on in its facility, itself included.
    crowded = await query(
        generated.db,
        "SELECT f.code, f.capacity, count(*) FROM placement a"
        " JOIN placement b ON b.facility_id = a.facility_id AND b.started_at <= a.started_at"
        " AND (b.ended_at IS NULL OR b.ended_at > a.started_at)"
        " JOIN facility f ON f.id = a.facility_id"
        " GROUP BY a.id, f.code, f.capacity HAVING count(*) > f.capacity",
    )
    over = await query(generated.db, "SELECT code FROM facility WHERE in_use > capacity")
    placed = await query(generated.db, "SELECT count(*) FROM placement")

    assert placed[0][0] >= 1
    assert generated.report.waiting + generated.report.unmet >= 1  # the overflow was not placed
    assert crowded == []
    assert over == []


async def test_leaves_an_audit_trail_that_verifies(generated: Generated) -> None:
    async with generated.db.session(write=False) as session:
        report = await audit_service.verify_chains(session, keys=audit_keys(generated.settings))
    actions = {a for (a,) in await query(generated.db, "SELECT DISTINCT action FROM audit_event")}

    assert report.ok, report.first_break
    assert {"case.created", "consent.recorded", "referral.sent"} <= actions


async def test_the_same_seed_gives_the_same_facts_and_another_seed_others(
    generated: Generated, var_dir: Path
) -> None:
    again = await _generate(var_dir, cases=CASES, seed=2016, beds=1)
    other = await _generate(var_dir, cases=CASES, seed=2017, beds=1)
    try:
        first = [_sorted(await query(generated.db, sql)) for sql in FACTS]
        second = [_sorted(await query(again.db, sql)) for sql in FACTS]
        third = [_sorted(await query(other.db, sql)) for sql in FACTS]
    finally:
        for world in (again, other):
            await world.db.dispose()
            await drop_database(world.settings.database_url)

    assert first == second
    assert first != third


async def _report(db: Database) -> dict[str, tuple[dict[tuple[str, ...], int], int]]:
    start, _ = demo.period_of(YEAR)
    scope = Scope(start=start, end=date(YEAR, 12, 31), known_on=utcnow())
    async with db.session(write=False) as session:
        tables = {
            code: await count_table(
                session, spec=spec, dimensions=breakdown(spec, None), scope=scope
            )
            for code, spec in CATALOGUE.items()
        }
    return {code: (dict(t.cells), t.total) for code, t in tables.items()}


@pytest.mark.postgres
async def test_the_benchmarks_bulk_copies_are_the_rows_the_services_wrote(var_dir: Path) -> None:
    world = await _generate(var_dir, cases=20, seed=9, beds=None)
    try:
        facts = [Counter(_sorted(await query(world.db, sql))) for sql in FACTS]
        report = await _report(world.db)
        async with world.db.engine.begin() as conn:
            cases = await clone_cases(conn, copies=2)
        copied_facts = [Counter(_sorted(await query(world.db, sql))) for sql in FACTS]
        copied_report = await _report(world.db)
    finally:
        await world.db.dispose()
        await drop_database(world.settings.database_url)

    assert cases == 3 * (20 + world.report.persons_identified_twice)
    # Every non-identifying row three times over: the originals and two copies.
    assert copied_facts == [Counter({row: 3 * n for row, n in f.items()}) for f in facts]
    # Each copy is another person: every cell and every total of the report, three times.
    assert copied_report == {
        code: ({cell: 3 * n for cell, n in cells.items()}, 3 * total)
        for code, (cells, total) in report.items()
    }
    assert min(report["V1"][1], report["V6"][1], report["P1"][1]) > 0
