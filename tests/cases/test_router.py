"""Cases through HTTP: identification, reading, correcting, listing, and the access rule."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.cases import service as case_service
from service.cases.rules import InvolvementBasis
from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, case_body, create_case, patch_case, person_body


async def test_identification_opens_a_case_seen_by_the_identifier(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body(exploitation=[{"form": "forced_labour", "sector": "gold_mining"}])

    created = await create_case(client, police, **body)

    assert created["status"] == "identified"
    assert created["victim_status"] == "suspected"
    assert created["involved_organizations"] == ["PNP"]
    [identification] = created["identifications"]
    assert identification["organization"] == "PNP"
    assert identification["region"] == "17"
    assert identification["exploitation"] == [{"form": "forced_labour", "sector": "gold_mining"}]
    fetched = await client.get(f"/v1/cases/{created['id']}", headers=police.headers)
    assert fetched.status_code == 200
    assert created.pop("possible_duplicates") == []
    assert fetched.json() == created


async def test_uninvolved_organization_gets_404_on_every_case_route(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    defender = await factory.user("MINJUS", Role.legal_aid)
    case = await create_case(client, police)

    # Every route under /v1/cases/{case_id}, today's and those later issues add.
    routes = [
        (method, path)
        for path, operations in app.openapi()["paths"].items()
        if "{case_id}" in path
        for method in operations
    ]
    assert len(routes) >= 3
    for method, path in routes:
        url = re.sub(r"\{case_id\}", case["id"], path)
        url = re.sub(r"\{[a-z_]+\}", "00000000-0000-4000-8000-000000000000", url)
        response = await client.request(method.upper(), url, json={}, headers=defender.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "case_not_found"
        # The same words wherever the case is refused: nothing to tell one route from another.
        assert response.json()["detail"] == "No such case is visible to your organization."
        assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_and_hidden_cases_answer_alike(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    other = await factory.user("MTPE", Role.identifier)
    case = await create_case(client, police)

    hidden = await client.get(f"/v1/cases/{case['id']}", headers=other.headers)
    missing = await client.get(
        "/v1/cases/00000000-0000-4000-8000-000000000000", headers=other.headers
    )

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == "case_not_found"
    assert {
        k: v for k, v in hidden.json().items() if k not in {"instance", "request_id", "detail"}
    } == {k: v for k, v in missing.json().items() if k not in {"instance", "request_id", "detail"}}


@pytest.mark.parametrize("role", [Role.analyst, Role.auditor, Role.admin])
async def test_roles_without_case_work_get_403(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    police = await factory.user("PNP", Role.identifier)
    outsider = await factory.user("PNP", role)
    case = await create_case(client, police)

    listed = await client.get("/v1/cases", headers=outsider.headers)
    read = await client.get(f"/v1/cases/{case['id']}", headers=outsider.headers)

    assert listed.status_code == read.status_code == 403
    assert listed.json()["code"] == read.json()["code"] == "forbidden"


async def test_second_identification_adds_the_organization(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    colleague = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)

    body = case_body(region="15", place="Lima, terminal terrestre", context="other")
    # Where the person is now, and who the person is, belong to the case, not here.
    del body["current_location"], body["person"]
    response = await client.post(
        f"/v1/cases/{case['id']}/identifications", json=body, headers=colleague.headers
    )

    assert response.status_code == 201, response.text
    regions = [i["region"] for i in response.json()["identifications"]]
    assert regions == ["17", "15"]


async def test_correction_changes_the_identification_and_is_audited(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    response = await patch_case(
        client,
        police,
        case["id"],
        {
            "place": "Mazuko, campamento minero",
            "exploitation": [
                {"form": "sexual_exploitation"},
                {"form": "forced_labour", "sector": "gold_mining"},
            ],
            "current_location": "Hogar de refugio",
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["current_location"] == "Hogar de refugio"
    [identification] = body["identifications"]
    assert identification["place"] == "Mazuko, campamento minero"
    assert {e["form"] for e in identification["exploitation"]} == {
        "sexual_exploitation",
        "forced_labour",
    }
    rows = await query(
        db,
        "SELECT changes FROM audit_event"
        " WHERE entity_id = :id AND action = 'identification.corrected'",
        id=case["id"],
    )
    [(changes,)] = rows
    changes = changes if isinstance(changes, dict) else json.loads(changes)
    assert changes["place"] == {
        "from": "Mazuko, bar on the Interoceánica",
        "to": "Mazuko, campamento minero",
    }
    assert "exploitation" in changes


async def test_correcting_without_having_identified_is_refused(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    # MIMP becomes involved the way a later referral will make it.
    mimp = await factory.user("MIMP", Role.caseworker)
    async with db.session() as session:
        await case_service.involve(
            session,
            actor=None,
            case_id=uuid.UUID(case["id"]),
            organization_id=mimp.actor.organization_id,
            basis=InvolvementBasis.referral,
        )

    visible = await client.get(f"/v1/cases/{case['id']}", headers=mimp.headers)
    refused = await patch_case(client, mimp, case["id"], {"place": "elsewhere"})

    assert visible.status_code == 200
    assert "MIMP" in visible.json()["involved_organizations"]
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_an_identifier"


async def test_ended_involvement_hides_the_case_again(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    case_id, org_id = uuid.UUID(case["id"]), mimp.actor.organization_id
    async with db.session() as session:
        await case_service.involve(
            session,
            actor=None,
            case_id=case_id,
            organization_id=org_id,
            basis=InvolvementBasis.referral,
        )
    assert (await client.get(f"/v1/cases/{case_id}", headers=mimp.headers)).status_code == 200

    async with db.session() as session:
        await case_service.end_involvement(
            session,
            actor=None,
            case_id=case_id,
            organization_id=org_id,
            basis=InvolvementBasis.referral,
        )

    hidden = await client.get(f"/v1/cases/{case_id}", headers=mimp.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "case_not_found"


@pytest.mark.parametrize(
    ("override", "field", "code"),
    [
        ({"region": "99"}, "region", "unknown_region"),
        ({"region": "Lima"}, "region", "validation_error"),
        ({"identified_on": "2999-01-01"}, "identified_on", "identification_in_future"),
        ({"identified_on": "0001-01-01"}, "identified_on", "identification_too_early"),
        ({"context": "raid"}, "context", "validation_error"),
        ({"exploitation": []}, "exploitation", "validation_error"),
        ({"exploitation": [{"form": "forced_labour"}]}, "exploitation.0", "validation_error"),
        (
            {"exploitation": [{"form": "sexual_exploitation", "sector": "logging"}]},
            "exploitation.0",
            "validation_error",
        ),
        ({"unexpected": 1}, "unexpected", "validation_error"),
    ],
)
async def test_invalid_identification_is_refused_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    db: Database,
    override: dict[str, Any],
    field: str,
    code: str,
) -> None:
    police = await factory.user("PNP", Role.identifier)
    body = case_body(**override)

    count = "SELECT (SELECT count(*) FROM case_file) + (SELECT count(*) FROM audit_event)"
    [(before,)] = await query(db, count)
    response = await client.post("/v1/cases", json=body, headers=police.headers)
    [(after,)] = await query(db, count)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422
    assert problem["code"] == code
    assert any(e["field"] == field for e in problem["errors"]), problem
    assert after == before


async def test_list_is_scoped_filtered_and_paginated(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    outsider = await factory.user("MINEDU", Role.identifier)
    mine = [
        (await create_case(client, ngo, region=region, context="ngo_outreach"))["id"]
        for region in ("08", "08", "21")
    ]
    await create_case(client, outsider)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/cases", params=params, headers=ngo.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    in_cusco = (await client.get("/v1/cases", params={"region": "08"}, headers=ngo.headers)).json()[
        "items"
    ]

    assert set(mine) <= set(seen)
    assert len(seen) == len(set(seen))
    assert {c["id"] for c in in_cusco} >= set(mine[:2])
    assert mine[2] not in {c["id"] for c in in_cusco}
    assert all(c["region"] == "08" for c in in_cusco)


async def test_garbage_cursor_is_a_422_naming_cursor(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    response = await client.get(
        "/v1/cases", params={"cursor": "not-a-cursor"}, headers=police.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["errors"][0]["field"] == "cursor"


async def test_a_case_identified_years_ago_shows_the_child_she_was_then(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # Entered today, identified on 2016-06-14 at an estimated 15: she is 25 now.
    police = await factory.user("PNP", Role.identifier)
    created = await create_case(
        client, police, identified_on="2016-06-14", person=person_body(age_estimate=15)
    )
    view = (await client.get(f"/v1/cases/{created['id']}", headers=police.headers)).json()

    assert view["person"]["age_at_identification"] == 15
    assert view["person"]["minor"] is True


async def test_a_back_dated_identification_of_a_known_person_judges_her_age_on_its_date(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # First recorded this year at 25 (born 2001-01-10); another institution then enters its
    # identification of the same document, made on 2016-06-14, when she was 15.
    police = await factory.user("PNP", Role.identifier)
    ministry = await factory.user("MIMP", Role.caseworker)
    person = person_body(age_estimate=None, birth_date="2001-01-10")
    first = await create_case(client, police, identified_on="2026-03-14", person=person)
    second = await create_case(client, ministry, identified_on="2016-06-14", person=person)
    view = (await client.get(f"/v1/cases/{second['id']}", headers=ministry.headers)).json()

    assert second["person_id"] == first["person_id"]
    assert first["person"]["minor"] is False
    assert view["person"]["minor"] is True


async def test_an_estimated_age_refers_to_the_day_she_was_first_recorded_in_any_case(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # First recorded on 2020-01-10 at an estimated 17; identified again, in a case of its own,
    # on 2026-03-14: the stored age still refers to 2020, so she is an adult in the new case.
    police = await factory.user("PNP", Role.identifier)
    ministry = await factory.user("MIMP", Role.caseworker)
    person = person_body(age_estimate=17)
    first = await create_case(client, police, identified_on="2020-01-10", person=person)
    second = await create_case(client, ministry, identified_on="2026-03-14", person=person)
    view = (await client.get(f"/v1/cases/{second['id']}", headers=ministry.headers)).json()

    assert second["person_id"] == first["person_id"]
    assert first["person"]["minor"] is True
    assert view["person"]["age_at_identification"] == 17
    assert view["person"]["minor"] is False
