"""Peruvians exploited abroad: a country instead of a region, the migration route kept for
statistics, and everything downstream of the identification coping without a region."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import (
    Factory,
    case_body,
    create_case,
    person_body,
    refer_for_shelter,
)

ROUTE = {"origin": "PER", "transit": ["BOL"], "destination": "ARG"}


def abroad_body(**overrides: Any) -> dict[str, Any]:
    """A Peruvian woman identified by the consulate in Buenos Aires, moved via Bolivia."""
    body = case_body(
        exploitation_country="ARG",
        context="consulate_abroad",
        place="Buenos Aires, taller textil de Flores",
        route=ROUTE,
        current_location="Consulado General del Perú en Buenos Aires",
        person=person_body(given_name="Maribel", age_estimate=24),
    )
    del body["region"]
    body.update(overrides)
    return body


async def _route_rows(db: Database, case_id: str) -> list[tuple[Any, ...]]:
    stmt = sa.text(
        "SELECT r.position, r.country, r.role FROM identification_route r"
        " JOIN identification i ON i.id = r.identification_id"
        " WHERE i.case_id = :id ORDER BY r.position"
    ).bindparams(sa.bindparam("id", type_=sa.Uuid()))
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt, {"id": uuid.UUID(case_id)})).all()]


async def test_consulate_records_a_peruvian_exploited_in_argentina_with_her_route(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)

    response = await client.post("/v1/cases", json=abroad_body(), headers=consulate.headers)

    assert response.status_code == 201, response.text
    created = response.json()
    [identification] = created["identifications"]
    assert identification["organization"] == "RREE"
    assert identification["region"] is None
    assert identification["exploitation_country"] == "ARG"
    assert identification["context"] == "consulate_abroad"
    assert identification["route"] == ROUTE
    fetched = await client.get(f"/v1/cases/{created['id']}", headers=consulate.headers)
    assert fetched.status_code == 200
    created.pop("possible_duplicates")
    assert fetched.json() == created
    [(changes,)] = await query(
        db,
        "SELECT changes FROM audit_event"
        " WHERE entity_id = :id AND action = 'identification.created'",
        id=created["id"],
    )
    changes = changes if isinstance(changes, dict) else json.loads(changes)
    assert changes["exploitation_country"] == {"to": "ARG"}
    assert "region" not in changes  # nothing to record: no region
    assert changes["route"]["to"] == [
        {"country": "PER", "role": "origin"},
        {"country": "BOL", "role": "transit"},
        {"country": "ARG", "role": "destination"},
    ]


async def test_case_list_shows_and_filters_a_case_without_region(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    abroad = await create_case(client, consulate, **abroad_body(region=None))
    at_home = await create_case(client, consulate, region="15", context="other")

    listed = await client.get("/v1/cases", params={"limit": 100}, headers=consulate.headers)
    assert listed.status_code == 200, listed.text
    summaries = {c["id"]: c for c in listed.json()["items"]}
    assert summaries[abroad["id"]]["region"] is None
    assert summaries[abroad["id"]]["exploitation_country"] == "ARG"
    assert summaries[at_home["id"]]["region"] == "15"
    assert summaries[at_home["id"]]["exploitation_country"] is None
    in_argentina = await client.get(
        "/v1/cases", params={"exploitation_country": "ARG"}, headers=consulate.headers
    )
    assert in_argentina.status_code == 200
    ids = {c["id"] for c in in_argentina.json()["items"]}
    assert abroad["id"] in ids
    assert at_home["id"] not in ids
    in_lima = await client.get("/v1/cases", params={"region": "15"}, headers=consulate.headers)
    assert abroad["id"] not in {c["id"] for c in in_lima.json()["items"]}


def _neither() -> dict[str, Any]:
    body = abroad_body()
    del body["exploitation_country"]
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_neither(), "region"),
        (abroad_body(region="15"), "exploitation_country"),
        (abroad_body(exploitation_country="PER"), "exploitation_country"),
        (case_body(region="15", context="consulate_abroad"), "exploitation_country"),
    ],
    ids=["neither", "both", "peru_as_country", "consulate_without_country"],
)
async def test_place_of_exploitation_is_one_region_or_one_foreign_country(
    client: httpx.AsyncClient, factory: Factory, db: Database, body: dict[str, Any], field: str
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    count = "SELECT (SELECT count(*) FROM case_file) + (SELECT count(*) FROM audit_event)"
    [(before,)] = await query(db, count)

    response = await client.post("/v1/cases", json=body, headers=consulate.headers)

    [(after,)] = await query(db, count)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_place_of_exploitation"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert after == before


async def test_further_identification_checks_the_place_too(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await create_case(client, consulate, **abroad_body(region=None))
    body = {k: v for k, v in abroad_body().items() if k not in {"person", "current_location"}}

    refused = await client.post(
        f"/v1/cases/{case['id']}/identifications",
        json={**body, "exploitation_country": "PER"},
        headers=consulate.headers,
    )
    added = await client.post(
        f"/v1/cases/{case['id']}/identifications",
        json={**body, "exploitation_country": "CHL", "route": None},
        headers=consulate.headers,
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_place_of_exploitation"
    assert added.status_code == 201, added.text
    first, second = added.json()["identifications"]
    assert (first["exploitation_country"], second["exploitation_country"]) == ("ARG", "CHL")
    assert (first["route"], second["route"]) == (ROUTE, None)


async def test_route_is_counted_by_country_in_sql(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    case = await create_case(client, consulate, **abroad_body(region=None))

    assert await _route_rows(db, case["id"]) == [
        (0, "PER", "origin"),
        (1, "BOL", "transit"),
        (2, "ARG", "destination"),
    ]
    stmt = sa.text(
        "SELECT r.country, count(*) FROM identification_route r"
        " JOIN identification i ON i.id = r.identification_id"
        " WHERE i.case_id = :id AND r.role = 'transit' GROUP BY r.country"
    ).bindparams(sa.bindparam("id", type_=sa.Uuid()))
    async with db.engine.connect() as conn:
        transit = (await conn.execute(stmt, {"id": uuid.UUID(case["id"])})).all()
    assert [tuple(r) for r in transit] == [("BOL", 1)]
    [(abroad,)] = await query(
        db, "SELECT count(*) FROM identification WHERE exploitation_country = 'ARG'"
    )
    assert abroad >= 1


async def test_placement_for_a_victim_exploited_abroad_is_sought_in_the_arrival_region(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    consulate = await factory.user("RREE", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, consulate, **abroad_body(region=None))
    # The consulate refers her for shelter; MIMP, accepting, seeks the bed.
    await refer_for_shelter(client, consulate, mimp, case["id"])

    response = await client.post(
        f"/v1/cases/{case['id']}/placements", json={}, headers=mimp.headers
    )

    assert response.status_code in {201, 202}, response.text
    stmt = sa.text("SELECT inputs FROM allocation_decision WHERE case_id = :id").bindparams(
        sa.bindparam("id", type_=sa.Uuid())
    )
    async with db.engine.connect() as conn:
        [(inputs,)] = (await conn.execute(stmt, {"id": uuid.UUID(case["id"])})).all()
    inputs = inputs if isinstance(inputs, dict) else json.loads(inputs)
    # RREE's own region: Lima, where the consulates' victims arrive.
    assert inputs["region"] == "15"
