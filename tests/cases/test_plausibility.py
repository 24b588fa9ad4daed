"""Impossible dates are refused, each with its own code, naming the field and nothing of
its value; nothing is written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.core.time import today, utcnow
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, case_body, create_case, person_body

TOMORROW = (today() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("override", "field", "code"),
    [
        (
            {
                "identified_on": "2020-05-01",
                "person": person_body(age_estimate=None, birth_date="2025-11-02"),
            },
            "person.birth_date",
            "birth_date_after_identification",
        ),
        (
            {"person": person_body(age_estimate=None, birth_date=TOMORROW)},
            "person.birth_date",
            "birth_date_in_future",
        ),
        (
            {"person": person_body(age_estimate=None, birth_date="0001-01-01")},
            "person.birth_date",
            "birth_date_too_early",
        ),
        ({"identified_on": "0001-01-01"}, "identified_on", "identification_too_early"),
        ({"identified_on": "1989-12-31"}, "identified_on", "identification_too_early"),
        ({"identified_on": TOMORROW}, "identified_on", "identification_in_future"),
    ],
)
async def test_an_impossible_birth_or_identification_is_refused_with_its_own_code(
    client: httpx.AsyncClient,
    factory: Factory,
    db: Database,
    override: dict[str, Any],
    field: str,
    code: str,
) -> None:
    police = await factory.user("PNP", Role.identifier)
    [(before,)] = await query(db, "SELECT count(*) FROM person")

    response = await client.post("/v1/cases", json=case_body(**override), headers=police.headers)

    [(after,)] = await query(db, "SELECT count(*) FROM person")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    assert [e["field"] for e in problem["errors"]] == [field]
    assert "0001" not in response.text
    assert "2025-11-02" not in response.text
    assert after == before


async def test_a_birth_on_the_identification_day_gives_age_zero(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(
        client,
        police,
        identified_on="2020-05-01",
        person=person_body(age_estimate=None, birth_date="2020-05-01"),
    )
    assert case["person"]["age_at_identification"] == 0


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # Outside the instants Ruta holds (core.types.Instant): refused as it is read.
        ({"start": "0001-01-01T00:00:00+01:00"}, "start", "validation_error"),
        ({"start": "9999-12-31T23:59:59-01:00"}, "start", "validation_error"),
        # Inside them, but implausible: the domain's rules.
        ({"start": "1950-01-01T00:00:00-05:00"}, "start", "date_too_early"),
        ({"start": (utcnow() + timedelta(hours=1)).isoformat()}, "start", "date_in_future"),
        (
            {
                "start": (utcnow() - timedelta(hours=2)).isoformat(),
                "end": (utcnow() - timedelta(hours=3)).isoformat(),
            },
            "end",
            "dates_out_of_order",
        ),
        ({"start": 1700000000}, "start", "validation_error"),
    ],
)
async def test_a_custody_period_that_cannot_be_true_is_refused_without_a_server_error(
    client: httpx.AsyncClient,
    factory: Factory,
    db: Database,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    [(before,)] = await query(db, "SELECT count(*) FROM custody_period")

    response = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={"place_kind": "police_station", **body},
        headers=police.headers,
    )

    [(after,)] = await query(db, "SELECT count(*) FROM custody_period")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert after == before


async def test_a_custody_start_a_minute_ahead_of_the_server_clock_is_accepted(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    response = await client.post(
        f"/v1/cases/{case['id']}/custody-periods",
        json={
            "place_kind": "police_station",
            "start": (utcnow() + timedelta(minutes=1)).isoformat(),
        },
        headers=police.headers,
    )

    assert response.status_code == 201, response.text
