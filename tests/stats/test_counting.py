"""The true counts behind the published tables: each person once, only cases that consent
or a legal basis lets statistics count, and the same numbers for a past day after later
corrections, links and late entries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import httpx

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from service.stats.catalogue import CATALOGUE, By, ExclusionReason, breakdown
from service.stats.counting import Scope, TrueTable, count_table
from tests.support.factories import Factory, SignedInUser, create_case, patch_case, person_body


async def _count(
    db: Database,
    code: str,
    day: date,
    by: tuple[By, ...] | None = None,
    known_on: datetime | None = None,
) -> TrueTable:
    spec = CATALOGUE[code]
    async with db.session(write=False) as session:
        return await count_table(
            session,
            spec=spec,
            dimensions=breakdown(spec, by),
            scope=Scope(start=day, end=day, known_on=known_on or utcnow()),
        )


async def _consent(
    client: httpx.AsyncClient, user: SignedInUser, case_id: str, *purposes: str
) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"purposes": list(purposes), "language": "es"}
        if purposes
        else {"refused": True, "language": "es"}
    )
    response = await client.post(f"/v1/cases/{case_id}/consents", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_one_person_identified_by_three_institutions_counts_once_and_thrice_by_institution(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    day = date(2001, 1, 10)
    person = person_body()
    cases = []
    for org, role in (
        ("PNP", Role.identifier),
        ("MIMP", Role.caseworker),
        ("NGO-SAMPLE", Role.caseworker),
    ):
        user = await factory.user(org, role)
        case = await create_case(client, user, identified_on=day.isoformat(), person=person)
        await _consent(client, user, case["id"], "services", "statistics")
        cases.append(case)

    v1 = await _count(db, "V1", day)
    v5 = await _count(db, "V5", day)

    assert len({c["person_id"] for c in cases}) == 1  # the same document: the same person
    assert v1.cells == {("minor", "female"): 1}
    assert v1.total == 1
    assert v5.cells == {
        ("PNP", "minor", "female"): 1,
        ("MIMP", "minor", "female"): 1,
        ("NGO-SAMPLE", "minor", "female"): 1,
    }
    assert v5.total == 1


async def test_only_cases_that_consent_or_a_legal_basis_covers_are_counted(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    day = date(2001, 2, 10)
    police = await factory.user("PNP", Role.identifier)
    # A caseworker of the identifying institution (identifiers may not record a basis).
    caseworker = await factory.user("PNP", Role.caseworker)

    async def case(**person: Any) -> dict[str, Any]:
        return await create_case(
            client, police, identified_on=day.isoformat(), person=person_body(**person)
        )

    consented = await case(gender="male", age_estimate=30)
    await _consent(client, police, consented["id"], "statistics")
    services_only = await case()
    await _consent(client, police, services_only["id"], "services")
    refused_later = await case()
    await _consent(client, police, refused_later["id"], "statistics")
    await _consent(client, police, refused_later["id"])
    revoked = await case()
    given = await _consent(client, police, revoked["id"], "statistics")
    assert (
        await client.post(f"/v1/consents/{given['id']}/revoke", headers=police.headers)
    ).status_code == 200
    silent = await case()
    by_law = await case(gender="male", age_estimate=40)
    refused_basis = await client.post(
        f"/v1/cases/{by_law['id']}/statistics-bases",
        json={"basis": "statutory_duty"},
        headers=police.headers,
    )
    basis = await client.post(
        f"/v1/cases/{by_law['id']}/statistics-bases",
        json={"basis": "statutory_duty"},
        headers=caseworker.headers,
    )
    not_a_victim = await case()
    await _consent(client, police, not_a_victim["id"], "statistics")
    screened = await client.post(
        f"/v1/cases/{not_a_victim['id']}/screenings",
        json={"victim_status": "not_a_victim"},
        headers=police.headers,
    )
    assert screened.status_code == 201, screened.text

    table = await _count(db, "V1", day)

    assert refused_basis.status_code == 403
    assert basis.status_code == 201, basis.text
    assert table.cells == {("adult", "male"): 2}  # consented, and by_law
    assert table.total == 2
    assert table.excluded == {
        # services only, refused after consenting, revoked, and silent
        ExclusionReason.no_consent_or_basis: 4,
        ExclusionReason.not_a_victim: 1,
    }
    assert silent["id"] not in {consented["id"], by_law["id"]}


async def test_a_past_day_counts_the_same_after_corrections_links_and_late_entries(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    day = date(2001, 3, 10)
    police = await factory.user("PNP", Role.identifier)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    who = {
        "given_name": "Lucía",
        "family_name": f"Mamani {uuid.uuid4().hex[:8]}",
        "birth_date": "1970-09-30",
        "age_estimate": None,
        "document": None,
    }
    labour = [{"form": "forced_labour", "sector": "agriculture"}]
    first = await create_case(
        client,
        police,
        identified_on=day.isoformat(),
        exploitation=labour,
        person=person_body(**who),
    )
    await _consent(client, police, first["id"], "statistics")
    second = await create_case(
        client,
        ngo,
        identified_on=day.isoformat(),
        region="08",
        context="ngo_outreach",
        exploitation=labour,
        person=person_body(**who),
    )
    await _consent(client, ngo, second["id"], "statistics")
    before = utcnow()
    published = await _count(db, "V2", day, known_on=before)

    corrected = await patch_case(
        client, police, first["id"], {"exploitation": [{"form": "sexual_exploitation"}]}
    )
    linked = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers=ngo.headers,
    )
    late = await create_case(client, police, identified_on=day.isoformat())
    await _consent(client, police, late["id"], "statistics")
    again = await _count(db, "V2", day, known_on=before)
    now = await _count(db, "V2", day)

    assert corrected.status_code == 200, corrected.text
    assert linked.status_code == 200, linked.text
    assert published.cells == {("labour", "adult", "female"): 2}  # two records, not yet linked
    assert again == published
    # Now: one person (linked) whose forms are sexual (police, corrected) and labour (NGO),
    # and the girl entered late.
    assert now.cells == {("both", "adult", "female"): 1, ("sexual", "minor", "female"): 1}
    assert now.total == 2


async def test_rates_per_100000_use_the_census_of_each_region(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    day = date(2017, 4, 10)
    police = await factory.user("PNP", Role.identifier)
    for _ in range(2):
        case = await create_case(client, police, identified_on=day.isoformat(), region="17")
        await _consent(client, police, case["id"], "statistics")

    table = await _count(db, "R1", day)

    assert table.dimensions == (By.region,)
    assert table.census_year == 2017
    assert table.denominators is not None
    assert len(table.denominators) == 25  # every region, with its population
    assert table.denominators[("17",)] == 141070  # Madre de Dios, INEI 2017
    assert table.cells[("17",)] == 2
    assert table.cells[("15",)] == 0  # zero is a rate too
    assert set(table.cells) == set(table.denominators)
