"""Custody, non-punishment and assistance through HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx

from service.core.time import utcnow
from service.identity.rules import Role
from tests.support.factories import Factory, create_case, person_body


async def test_an_adult_in_a_police_station_is_recorded_without_a_child_alert(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police, person=person_body(age_estimate=34))

    custody = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={
            "place_kind": "police_station",
            "start": (utcnow() - timedelta(hours=30)).isoformat(),
            "end": (utcnow() - timedelta(hours=6)).isoformat(),
        },
        headers=police.headers,
    )
    alerts = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]

    assert custody.status_code == 201
    assert custody.json()["minor"] is False
    assert custody.json()["hours"] == 24.0
    assert alerts == []


async def test_custody_end_before_start_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    start = utcnow() - timedelta(hours=2)
    response = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={
            "place_kind": "other",
            "start": start.isoformat(),
            "end": (start - timedelta(hours=1)).isoformat(),
        },
        headers=police.headers,
    )
    naive = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={"place_kind": "other", "start": "2026-01-01T10:00:00"},
        headers=police.headers,
    )
    assert response.status_code == naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "start"


async def test_punishing_a_victim_for_compelled_acts_opens_an_alert(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    record = await client.post(
        f"/v1/cases/{case['id']}/non-punishment-records",
        json={
            "measure": "charge",
            "offence": "theft (escape from the bar)",
            "occurred_on": "2026-03-15",
            "authority": "Comisaría de Mazuko",
        },
        headers=police.headers,
    )
    alerts = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]
    assert record.status_code == 201
    assert [a["kind"] for a in alerts] == ["non_punishment"]
    assert alerts[0]["source_id"] == record.json()["id"]


async def test_assistance_starts_care(client: httpx.AsyncClient, factory: Factory) -> None:
    police = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)
    declined = await client.post(
        f"/v1/cases/{case['id']}/assistance",
        json={"kind": "medical", "provided_on": utcnow().date().isoformat(), "outcome": "declined"},
        headers=police.headers,
    )
    status_after_declined = (
        await client.get(f"/v1/cases/{case['id']}", headers=police.headers)
    ).json()["status"]
    given = await client.post(
        f"/v1/cases/{case['id']}/assistance",
        json={"kind": "documents", "provided_on": utcnow().date().isoformat()},
        headers=police.headers,
    )
    view = (await client.get(f"/v1/cases/{case['id']}", headers=police.headers)).json()
    assert declined.status_code == given.status_code == 201
    assert status_after_declined == "identified"
    assert view["status"] == "in_care"


async def test_alerts_come_oldest_first_a_page_at_a_time(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    opened = []
    for offence in ("theft", "false documents", "trespass"):
        record = await client.post(
            f"/v1/cases/{case['id']}/non-punishment-records",
            json={
                "measure": "arrest",
                "offence": offence,
                "occurred_on": "2026-03-15",
                "authority": "Comisaría",
            },
            headers=police.headers,
        )
        opened.append(record.json()["id"])

    sources: list[str] = []
    params: dict[str, str | int] = {"case_id": case["id"], "limit": 2}
    pages = 0
    while True:
        page = (await client.get("/v1/alerts", params=params, headers=police.headers)).json()
        sources += [a["source_id"] for a in page["items"]]
        pages += 1
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]

    assert sources == opened
    assert pages == 2


async def test_a_back_dated_custody_of_a_girl_then_15_is_a_child_in_custody(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # Identified this year, 25 today; on 2016-06-14 she was 15.
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(
        client,
        police,
        identified_on="2026-03-14",
        person=person_body(age_estimate=None, birth_date="2001-01-10"),
    )

    custody = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={"place_kind": "police_station", "start": "2016-06-14T09:00:00-05:00"},
        headers=police.headers,
    )
    alerts = (
        await client.get("/v1/alerts", params={"case_id": case["id"]}, headers=police.headers)
    ).json()["items"]

    assert case["person"]["age_at_identification"] == 25
    assert case["person"]["minor"] is False
    assert custody.status_code == 201
    assert custody.json()["minor"] is True
    assert [(a["kind"], a["source_id"]) for a in alerts] == [
        ("minor_in_custody", custody.json()["id"])
    ]
