"""A foreign victim's asylum claim and residency through HTTP: dated history, the one in
force, only for foreign nationals, audited."""

from __future__ import annotations

import httpx

from service.core.db import Database
from service.identity.rules import Role
from tests.legal.helpers import audit_actions
from tests.repatriation.helpers import claim, foreign_case, refer_to_unhcr, rows_of_case
from tests.support.factories import Factory, create_case


async def test_unhcr_records_the_claim_and_the_latest_effective_day_is_in_force(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    unhcr = await factory.user("UNHCR", Role.caseworker)
    case = await foreign_case(client, police)
    await refer_to_unhcr(client, police, unhcr, case["id"])

    pending = await claim(client, unhcr, case["id"], "pending", "2026-03-20")
    recognized = await claim(client, unhcr, case["id"], "recognized", "2026-09-01")
    # Entered late, about an earlier day: history, not the claim in force.
    backdated = await claim(client, unhcr, case["id"], "none", "2026-03-15")
    seen_by_police = await client.get(
        f"/v1/cases/{case['id']}/asylum-claim", headers=police.headers
    )

    assert pending.status_code == recognized.status_code == backdated.status_code == 201
    assert pending.json()["current"]["status"] == "pending"
    assert recognized.json()["current"]["status"] == "recognized"
    view = seen_by_police.json()
    assert seen_by_police.status_code == 200
    assert view == backdated.json()
    assert view["current"]["status"] == "recognized"
    assert view["current"]["organization"] == "UNHCR"
    assert [(e["status"], e["effective_on"]) for e in view["history"]] == [
        ("none", "2026-03-15"),
        ("pending", "2026-03-20"),
        ("recognized", "2026-09-01"),
    ]
    assert (await audit_actions(db, case["id"])).count("asylum_claim.recorded") == 3


async def test_the_same_day_the_later_record_is_in_force(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)

    await claim(client, police, case["id"], "pending", "2026-03-20")
    corrected = await claim(client, police, case["id"], "rejected", "2026-03-20")

    assert corrected.json()["current"]["status"] == "rejected"
    assert [e["status"] for e in corrected.json()["history"]] == ["pending", "rejected"]


async def test_residency_is_dated_history_recorded_by_migraciones(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)
    url = f"/v1/cases/{case['id']}/residency"
    empty = await client.get(url, headers=police.headers)

    temporary = await client.post(
        url, json={"status": "temporary", "effective_on": "2026-04-01"}, headers=police.headers
    )
    permanent = await client.post(
        url, json={"status": "permanent", "effective_on": "2026-10-01"}, headers=police.headers
    )

    assert empty.status_code == 200
    assert empty.json() == {"current": None, "history": []}
    assert temporary.status_code == permanent.status_code == 201, permanent.text
    assert permanent.json()["current"]["status"] == "permanent"
    assert [e["status"] for e in permanent.json()["history"]] == ["temporary", "permanent"]
    assert (await audit_actions(db, case["id"])).count("residency.recorded") == 2


async def test_a_peruvian_has_no_asylum_claim_nor_residency_and_nothing_is_written(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    before = await audit_actions(db, case["id"])

    asylum = await claim(client, police, case["id"], "pending", "2026-03-20")
    residency = await client.post(
        f"/v1/cases/{case['id']}/residency",
        json={"status": "temporary", "effective_on": "2026-03-20"},
        headers=police.headers,
    )

    assert (asylum.status_code, asylum.json()["code"]) == (409, "not_a_foreign_national")
    assert (residency.status_code, residency.json()["code"]) == (409, "not_a_foreign_national")
    assert "PER" in asylum.json()["detail"]
    assert await audit_actions(db, case["id"]) == before
    assert await rows_of_case(db, "asylum_claim_status", case["id"]) == 0
    assert await rows_of_case(db, "residency_status", case["id"]) == 0


async def test_a_claim_dated_in_the_future_is_refused_naming_the_field(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await foreign_case(client, police)

    response = await claim(client, police, case["id"], "pending", "2999-01-01")
    unknown = await claim(client, police, case["id"], "granted", "2026-03-01")

    assert response.status_code == 422
    assert "effective_on" in response.text
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["status"]
