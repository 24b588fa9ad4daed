"""A legal basis other than consent for counting a case in the statistics: who may record
it, one active per basis, withdrawn with a date, audited."""

from __future__ import annotations

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, create_case


async def test_a_basis_is_recorded_once_withdrawn_once_and_audited(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    caseworker = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)
    path = f"/v1/cases/{case['id']}/statistics-bases"

    recorded = await client.post(path, json={"basis": "guardianship"}, headers=caseworker.headers)
    twice = await client.post(path, json={"basis": "guardianship"}, headers=caseworker.headers)
    other = await client.post(path, json={"basis": "court_order"}, headers=caseworker.headers)
    unknown = await client.post(path, json={"basis": "convenience"}, headers=caseworker.headers)
    withdrawn = await client.post(
        f"/v1/statistics-bases/{recorded.json()['id']}/withdraw", headers=caseworker.headers
    )
    again = await client.post(
        f"/v1/statistics-bases/{recorded.json()['id']}/withdraw", headers=caseworker.headers
    )
    listed = await client.get(path, headers=police.headers)

    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["active"] is True
    assert twice.status_code == 409
    assert twice.json()["code"] == "statistics_basis_already_recorded"
    assert other.status_code == 201
    assert unknown.status_code == 422
    assert withdrawn.status_code == 200
    assert withdrawn.json()["active"] is False
    assert withdrawn.json()["withdrawn_at"] is not None
    assert again.status_code == 409
    assert again.json()["code"] == "statistics_basis_already_withdrawn"
    assert [(b["basis"], b["active"]) for b in listed.json()] == [
        ("guardianship", False),
        ("court_order", True),
    ]
    actions = await query(
        db,
        "SELECT action FROM audit_event WHERE entity_id = :id AND action LIKE 'statistics_basis.%'"
        " ORDER BY action",
        id=case["id"],
    )
    assert [a for (a,) in actions] == [
        "statistics_basis.recorded",  # guardianship
        "statistics_basis.recorded",  # court order
        "statistics_basis.withdrawn",
    ]


async def test_only_involved_organizations_that_may_override_consent_touch_a_basis(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    caseworker = await factory.user("PNP", Role.caseworker)
    outsider = await factory.user("MIMP", Role.caseworker)
    analyst = await factory.user("MIMP", Role.analyst)
    case = await create_case(client, police)
    path = f"/v1/cases/{case['id']}/statistics-bases"
    recorded = await client.post(path, json={"basis": "court_order"}, headers=caseworker.headers)

    by_identifier = await client.post(path, json={"basis": "guardianship"}, headers=police.headers)
    by_outsider = await client.post(path, json={"basis": "guardianship"}, headers=outsider.headers)
    outsider_reads = await client.get(path, headers=outsider.headers)
    outsider_withdraws = await client.post(
        f"/v1/statistics-bases/{recorded.json()['id']}/withdraw", headers=outsider.headers
    )
    analyst_reads = await client.get(path, headers=analyst.headers)

    assert recorded.status_code == 201
    assert by_identifier.status_code == 403
    assert by_outsider.status_code == 404
    assert outsider_reads.status_code == 404
    assert outsider_withdraws.status_code == 404
    assert outsider_withdraws.json()["code"] == "statistics_basis_not_found"
    assert analyst_reads.status_code == 403
