"""Differentially private releases: each release year spends at most its epsilon
(RUTA_DP_EPSILON_PER_YEAR, 1.0 by default), recorded in a ledger and refused once spent, even
when asked for at once; suppression decided on noisy counts only; never "reproduced"."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from service.identity.rules import Role
from service.stats.rules import K_THRESHOLD
from tests.stats.conftest import World
from tests.support.databases import query
from tests.support.factories import SignedInUser, create_case, person_body


async def _analyst(world: World) -> SignedInUser:
    return await world.factory.user("MIMP", Role.analyst)


async def _release(
    client: httpx.AsyncClient, user: SignedInUser, year: int, epsilon: str, **body: Any
) -> httpx.Response:
    return await client.post(
        "/v1/stats/releases",
        json={"year": year, "method": "dp", "epsilon": epsilon, **body},
        headers=user.headers,
    )


async def _ledger(world: World, year: int) -> list[tuple[Any, ...]]:
    return await query(
        world.db,
        "SELECT epsilon, epsilon_micro FROM privacy_budget_spend WHERE year = :year"
        " ORDER BY spent_at",
        year=year,
    )


async def test_a_year_spends_its_budget_then_is_refused_with_nothing_written(
    world: World,
) -> None:
    analyst = await _analyst(world)
    police = await world.factory.user("PNP", Role.identifier)
    for i in range(14):
        case = await create_case(
            world.client,
            police,
            identified_on=date(2011, 1 + i % 12, 3).isoformat(),
            person=person_body(),
        )
        consent = await world.client.post(
            f"/v1/cases/{case['id']}/consents",
            json={"purposes": ["statistics"], "language": "es"},
            headers=police.headers,
        )
        assert consent.status_code == 201, consent.text

    first = await _release(world.client, analyst, 2011, "0.5")
    second = await _release(world.client, analyst, 2011, "0.5")
    refused = await _release(world.client, analyst, 2011, "0.000001")
    other_year = await _release(world.client, analyst, 2012, "0.25")

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert refused.status_code == 409
    assert refused.json()["code"] == "privacy_budget_spent"
    assert other_year.status_code == 201, other_year.text
    release = first.json()
    assert (release["method"], release["epsilon"]) == ("dp", "0.5")
    tables = release["tables"]
    share = Decimal("0.5") / len(tables)
    for table in tables:
        assert table["disclosure"]["method"] == "dp"
        assert abs(Decimal(table["disclosure"]["epsilon"]) - share) < Decimal("1e-6")
        # Suppression read from the noisy counts: nothing from 1 to 10 is ever shown.
        shown = [c["value"] for c in table["cells"] if "value" in c]
        assert not [v for v in shown if 0 < v < K_THRESHOLD]
        assert all(m == {"suppressed": True} for m in table["measures"].values())
    assert await _ledger(world, 2011) == [("0.5", 500_000), ("0.5", 500_000)]
    [(count,)] = await query(
        world.db,
        "SELECT count(*) FROM stats_release WHERE method = 'dp' AND period_start = :start",
        start=date(2011, 1, 1),
    )
    assert count == 2
    [(audited,)] = await query(
        world.db,
        "SELECT count(*) FROM audit_event WHERE action = 'stats.release_published'"
        " AND entity_id IN (:a, :b)",
        a=release["id"],
        b=second.json()["id"],
    )
    assert audited == 2


async def test_a_dp_release_says_it_cannot_be_reproduced(world: World) -> None:
    analyst = await _analyst(world)
    release = (await _release(world.client, analyst, 2013, "0.1")).json()

    verified = await world.client.post(
        f"/v1/stats/releases/{release['id']}/verify", headers=analyst.headers
    )

    assert verified.status_code == 200, verified.text
    answer = verified.json()
    assert answer["reproduced"] is False
    assert answer["recomputed_digest"] is None
    assert "cannot be recomputed" in answer["note"]


async def test_a_table_counting_a_person_in_several_cells_is_refused_and_spends_nothing(
    world: World,
) -> None:
    analyst = await _analyst(world)

    refused = await _release(
        world.client, analyst, 2014, "0.5", tables=[{"code": "V1"}, {"code": "V5"}]
    )
    after = await _release(world.client, analyst, 2014, "1.0", tables=[{"code": "V1"}])

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "tables"
    assert after.status_code == 201, after.text
    assert await _ledger(world, 2014) == [("1.0", 1_000_000)]


async def test_dp_needs_a_year_and_an_epsilon_and_suppression_takes_none(world: World) -> None:
    analyst = await _analyst(world)
    bodies = [
        {"year": 2015, "method": "dp"},
        {"start": "2015-01-01", "end": "2015-06-30", "method": "dp", "epsilon": "0.1"},
        {"year": 2015, "epsilon": "0.1"},
        {"year": 2015, "method": "dp", "epsilon": "0"},
        {"year": 2015, "method": "dp", "epsilon": "0.0000001"},
    ]

    responses = [
        await world.client.post("/v1/stats/releases", json=b, headers=analyst.headers)
        for b in bodies
    ]

    assert [r.status_code for r in responses] == [422] * len(bodies)
    assert await _ledger(world, 2015) == []


async def test_releases_asked_for_at_once_never_pass_the_budget(world: World) -> None:
    analyst = await _analyst(world)

    responses = await asyncio.gather(
        *(_release(world.client, analyst, 2009, "0.3", tables=[{"code": "V1"}]) for _ in range(6))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 201, 201, 409, 409, 409]
    assert [m for _, m in await _ledger(world, 2009)] == [300_000] * 3
    [(spent,)] = await query(world.db, "SELECT spent_micro FROM privacy_budget WHERE year = 2009")
    assert spent == 900_000
