"""Simulation jobs through HTTP: queued with 202 and a Location, polled until they succeed
with the runner's own results, refused field by field, for analysts and administrators only,
and never lost by a restart."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.planning import rules
from service.planning.models import SimulationJob
from service.simulation import runner
from service.simulation.scenario import parse
from tests.support.clients import client_from
from tests.support.databases import make_settings, query
from tests.support.factories import Factory, SignedInUser

SMALL: dict[str, Any] = {
    "name": "one-shelter",
    "horizon_days": 90,
    "warmup_days": 30,
    "replications": 12,
    "seed": 7,
    "facilities": [{"code": "LIMA", "region": "15", "kind": "specialized_shelter", "beds": 5}],
    "length_of_stay": {"distribution": "exponential", "mean": 20},
    "arrivals": [
        {"kind": "singles", "region": "15", "per_year": 80},
        {
            "kind": "raids",
            "region": "15",
            "raids_per_year": 6,
            "size": {"distribution": "pareto", "alpha": 1.5, "minimum": 2, "maximum": 20},
        },
    ],
    "mixes": {
        "default": [
            {
                "weight": 1,
                "age": [12, 30],
                "gender": "female",
                "exploitation": ["sexual_exploitation"],
            }
        ]
    },
}


@pytest.fixture(scope="module")
async def analyst(factory: Factory) -> SignedInUser:
    return await factory.user("MIMP", Role.analyst)


async def _finished(client: httpx.AsyncClient, user: SignedInUser, location: str) -> dict[str, Any]:
    """Poll a simulation until it has finished."""
    for _ in range(600):
        response = await client.get(location, headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} did not finish: {body}")


async def test_simulation_runs_in_background_with_the_runners_own_results(
    client: httpx.AsyncClient, db: Database, analyst: SignedInUser
) -> None:
    response = await client.post(
        "/v1/simulations", json={"scenario": SMALL}, headers=analyst.headers
    )

    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/simulations/{job_id}"
    assert response.json()["status"] in {"queued", "running"}
    assert response.json()["progress"]["total"] == 12
    body = await _finished(client, analyst, response.headers["location"])
    expected = runner.simulate(parse(SMALL), workers=1)
    assert body["status"] == "succeeded", body
    assert body["progress"] == {"done": 12, "total": 12}
    assert body["result"] == rules.result_of(expected)
    assert body["result"]["placement_rate"]["value"] == expected.placement_rate.value
    assert body["charts"] == {"occupancy": f"/v1/simulations/{job_id}/charts/occupancy.png"}
    chart = await client.get(body["charts"]["occupancy"], headers=analyst.headers)
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    listed = await client.get("/v1/simulations", headers=analyst.headers)
    assert job_id in [j["id"] for j in listed.json()]
    actions = await query(
        db, "SELECT action FROM audit_event WHERE entity_id = :id ORDER BY occurred_at", id=job_id
    )
    assert [a for (a,) in actions] == [
        "simulation.requested",
        "simulation.started",
        "simulation.succeeded",
    ]


async def test_reference_scenario_runs_with_its_overrides(
    client: httpx.AsyncClient, analyst: SignedInUser, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    response = await client.post(
        "/v1/simulations",
        json={"reference": "peru-2016", "replications": 2, "seed": 11},
        headers=admin.headers,
    )

    assert response.status_code == 202, response.text
    body = await _finished(client, admin, response.headers["location"])
    assert body["status"] == "succeeded", body
    assert body["scenario"]["name"] == "peru-2016"
    assert (body["scenario"]["replications"], body["scenario"]["seed"]) == (2, 11)
    assert set(body["result"]["occupancy"]) >= {"MIMP-HRT-LIMA", "MIMP-HRT-MAZUKO"}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (
            {"scenario": {**SMALL, "facilities": [{**SMALL["facilities"][0], "beds": -1}]}},
            "scenario.facilities[0].beds",
            "greater than or equal to 0",
        ),
        ({"scenario": {**SMALL, "arrivals": []}}, "scenario.arrivals", "at least 1"),
        ({"scenario": {**SMALL, "horizon_days": 5000}}, "scenario.horizon_days", "3,650 days"),
        ({"scenario": {**SMALL, "replications": 5000}}, "scenario.replications", "1,000"),
        (
            {
                "scenario": {
                    **SMALL,
                    "arrivals": [{"kind": "singles", "region": "15", "per_year": 9e6}],
                }
            },
            "scenario.arrivals",
            "at most 20,000,000",
        ),
        ({"reference": "peru-2099"}, "reference", "no built-in scenario"),
        ({"reference": "peru-2016", "scenario": SMALL}, "scenario", "one of the two"),
        ({"reference": "peru-2016", "replications": 5000}, "replications", "less than or equal"),
    ],
)
async def test_refuses_a_scenario_naming_the_field(
    client: httpx.AsyncClient,
    db: Database,
    analyst: SignedInUser,
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    [(before,)] = await query(db, "SELECT count(*) FROM simulation_job")
    response = await client.post("/v1/simulations", json=body, headers=analyst.headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert says in errors[0]["message"]
    assert await query(db, "SELECT count(*) FROM simulation_job") == [(before,)]


@pytest.mark.parametrize("role", [Role.identifier, Role.caseworker, Role.auditor])
async def test_only_analysts_and_administrators_simulate(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    user = await factory.user("PNP" if role is Role.identifier else "MIMP", role)
    posted = await client.post("/v1/simulations", json={"scenario": SMALL}, headers=user.headers)
    listed = await client.get("/v1/simulations", headers=user.headers)
    read = await client.get(f"/v1/simulations/{uuid.uuid4()}", headers=user.headers)

    assert (posted.status_code, listed.status_code, read.status_code) == (403, 403, 403)


async def test_another_organizations_simulation_is_not_found(
    client: httpx.AsyncClient, factory: Factory, analyst: SignedInUser
) -> None:
    posted = await client.post(
        "/v1/simulations", json={"scenario": {**SMALL, "replications": 2}}, headers=analyst.headers
    )
    other = await factory.user("MINJUS", Role.analyst)

    response = await client.get(posted.headers["location"], headers=other.headers)
    chart = await client.get(
        f"{posted.headers['location']}/charts/occupancy.png", headers=other.headers
    )

    assert response.status_code == 404
    assert response.json()["code"] == "simulation_not_found"
    assert chart.status_code == 404
    await _finished(client, analyst, posted.headers["location"])


async def _insert_job(app: FastAPI, user: SignedInUser, *, heartbeat_age: timedelta) -> uuid.UUID:
    db: Database = app.state.db
    async with db.session() as session:
        job = SimulationJob(
            status="running",
            scenario=parse(SMALL).model_dump(mode="json"),
            replications_done=3,
            replications_total=12,
            created_by=user.actor.user_id,
            organization_id=user.actor.organization_id,
            started_at=utcnow() - heartbeat_age,
            heartbeat_at=utcnow() - heartbeat_age,
        )
        session.add(job)
    return job.id


async def test_job_interrupted_by_a_restart_is_marked_failed(
    fresh_settings: Settings,
) -> None:
    before = create_app(fresh_settings)
    async with before.router.lifespan_context(before):
        user = await Factory(before.state.db, before.state.security).user("MIMP", Role.analyst)
        stale = await _insert_job(before, user, heartbeat_age=timedelta(hours=1))
        alive = await _insert_job(before, user, heartbeat_age=timedelta(seconds=0))

    after = create_app(fresh_settings)
    async with after.router.lifespan_context(after), client_from(after, "10.0.0.2") as client:
        failed = (await client.get(f"/v1/simulations/{stale}", headers=user.headers)).json()
        held = (await client.get(f"/v1/simulations/{alive}", headers=user.headers)).json()
        events = await query(
            after.state.db, "SELECT action FROM audit_event WHERE entity_id = :id", id=str(stale)
        )

    assert failed["status"] == "failed"
    assert failed["error"] == rules.INTERRUPTED
    assert failed["finished_at"] is not None
    assert failed["progress"] == {"done": 3, "total": 12}
    # A job whose process still beats (another API worker) is left alone.
    assert held["status"] == "running"
    assert events == [("simulation.interrupted",)]


async def test_refuses_with_503_while_the_queue_is_full(
    fresh_settings: Settings, var_dir: Path
) -> None:
    settings = make_settings(fresh_settings.database_url, var_dir, simulation_queue=1)
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_from(app, "10.0.0.3") as client:
        user = await Factory(app.state.db, app.state.security).user("MIMP", Role.analyst)
        await _insert_job(app, user, heartbeat_age=timedelta(seconds=0))
        response = await client.post(
            "/v1/simulations", json={"scenario": SMALL}, headers=user.headers
        )

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "simulation_queue_full"
    assert response.headers["retry-after"] == "30"
