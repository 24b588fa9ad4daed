"""`ruta simulate --from-db`: a scenario calibrated from cases seeded through the API, its
rates, raids, mix, stays and census, written out, valid and runnable."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.planning import calibration, rules
from service.simulation import runner, scenario
from service.simulation.scenario import Raids, Singles
from tests.support.cli import ruta
from tests.support.clients import client_from
from tests.support.factories import (
    Factory,
    SignedInUser,
    create_case,
    person_body,
    refer_for_shelter,
)

YEAR = utcnow().year  # placements begin now: their year is this one


async def _case(
    client: httpx.AsyncClient, police: SignedInUser, *, month: int, **fields: Any
) -> dict[str, Any]:
    return await create_case(
        client, police, identified_on=date(YEAR, month, 3).isoformat(), **fields
    )


async def _seed(client: httpx.AsyncClient, police: SignedInUser) -> list[dict[str, Any]]:
    """Two raids in Madre de Dios (3 and 2 girls), four people met alone in Lima, one man
    abroad; the first girl of the first raid placed, then discharged after 20 days."""
    raid_a = [await _case(client, police, month=3, operation_ref="OP-A") for _ in range(3)]
    raid_b = [await _case(client, police, month=5, operation_ref="OP-B") for _ in range(2)]
    for month in (1, 1, 7, 7):
        await _case(
            client,
            police,
            month=month,
            region="15",
            operation_ref=None,
            context="hotline",
            exploitation=[{"form": "forced_labour", "sector": "domestic_service"}],
            person=person_body(age_estimate=30),
        )
    await _case(
        client, police, month=2, region=None, exploitation_country="ARG", operation_ref=None
    )
    return [*raid_a, *raid_b]


async def _place(
    client: httpx.AsyncClient, police: SignedInUser, mimp: SignedInUser, case_id: str
) -> dict[str, Any]:
    """The police refer the girl for shelter; MIMP accepts and places her."""
    await refer_for_shelter(client, police, mimp, case_id)
    response = await client.post(f"/v1/cases/{case_id}/placements", json={}, headers=mimp.headers)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "placed", response.text
    placement: dict[str, Any] = response.json()["placement"]
    return placement


async def test_calibrates_rates_raids_mix_stays_and_census_from_the_records(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    app = create_app(fresh_settings)
    async with app.router.lifespan_context(app), client_from(app, "10.0.0.4") as client:
        factory = Factory(app.state.db, app.state.security)
        police = await factory.user("PNP", Role.identifier)
        mimp = await factory.user("MIMP", Role.caseworker)
        girls = await _seed(client, police)
        discharged = await _place(client, police, mimp, girls[0]["id"])
        ended = await client.post(
            f"/v1/placements/{discharged['id']}/end",
            json={"reason": "discharged"},
            headers=mimp.headers,
        )
        assert ended.status_code == 200, ended.text
        # The stay began 20 days before it ended (a stay entered as it happened, earlier).
        async with app.state.db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "UPDATE placement SET placed_at = placed_at - INTERVAL '20 days'"
                if app.state.db.dialect == "postgresql"
                else "UPDATE placement SET placed_at = datetime(placed_at, '-20 days')"
            )
        occupant = await _place(client, police, mimp, girls[3]["id"])
        async with app.state.db.session(write=False) as session:
            found = await calibration.calibrate(
                session, year=YEAR, census=True, max_wait_days=30, today=date(YEAR, 12, 1)
            )

    calibrated = found.scenario
    streams = {(s.kind, s.region): s for s in calibrated.arrivals}
    assert set(streams) == {("raids", "17"), ("singles", "15")}
    raids, alone = streams["raids", "17"], streams["singles", "15"]
    assert isinstance(raids, Raids)
    assert isinstance(alone, Singles)
    assert raids.raids_per_year == 2
    assert raids.size.model_dump() == {
        "distribution": "pareto",
        "alpha": round(2 / math.log(3 / 2), 4),
        "minimum": 2,
        "maximum": 3,
    }
    assert raids.seasonality == [0, 0, 6, 0, 6, 0, 0, 0, 0, 0, 0, 0]
    assert alone.per_year == 4
    assert alone.seasonality == [6, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0]
    assert (found.persons, found.operations, found.stays) == (9, 2, 1)
    mix = {
        (p.age, p.gender, tuple(p.exploitation)): p.weight for p in calibrated.mixes["calibrated"]
    }
    assert mix == {
        ((12, 17), "female", ("sexual_exploitation",)): 5,
        ((18, 59), "female", ("forced_labour",)): 4,
    }
    assert calibrated.length_of_stay.model_dump() == {"distribution": "exponential", "mean": 20.0}
    beds = {f.code: f for f in calibrated.facilities}
    assert beds[occupant["facility_code"]].occupied == 1
    assert sum(f.occupied for f in calibrated.facilities) == 1
    assert (calibrated.start, calibrated.warmup_days) == (date(YEAR, 12, 1), 0)
    summary = runner.simulate(calibrated, replications=4, workers=1)
    assert summary.replications == 4
    assert summary.arrivals_per_year > 0


async def test_writes_a_scenario_that_validates_and_runs(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    app = create_app(fresh_settings)
    async with app.router.lifespan_context(app), client_from(app, "10.0.0.5") as client:
        police = await Factory(app.state.db, app.state.security).user("PNP", Role.identifier)
        await _seed(client, police)
    out = tmp_path / "calibrated.yaml"

    written = ruta(fresh_settings, "simulate", "--from-db", "--year", str(YEAR), "--out", str(out))
    ran = ruta(fresh_settings, "simulate", str(out), "--replications", "3", "--workers", "1")
    empty = ruta(fresh_settings, "simulate", "--from-db", "--year", "2004", "--no-census")

    assert written.returncode == 0, written.stderr
    assert "9 persons, 2 operations, 0 ended stays" in written.stderr
    loaded = scenario.load(out)
    assert loaded.name == f"from-db-{YEAR}"
    assert ran.returncode == 0, ran.stderr
    assert f"scenario from-db-{YEAR}" in ran.stdout
    assert empty.returncode == 2
    assert "no person identified in Peru in 2004" in empty.stderr


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([4, 4, 4], {"distribution": "fixed", "value": 4}),
        (
            [1, 2, 4],
            {
                "distribution": "pareto",
                "alpha": round(3 / math.log(8), 4),
                "minimum": 1,
                "maximum": 4,
            },
        ),
    ],
)
def test_raid_sizes_are_fixed_or_a_pareto_by_maximum_likelihood(
    sizes: list[int], expected: dict[str, Any]
) -> None:
    assert rules.raid_size(sizes) == expected


def test_a_stay_needs_two_ended_stays_for_a_spread() -> None:
    assert rules.stay(0, None, None) is None
    assert rules.stay(1, 20.0, 400.0) == {"distribution": "exponential", "mean": 20.0}
    # Stays of 10 and 30 days: mean 20, sample sd sqrt(200).
    assert rules.stay(2, 20.0, 500.0) == {
        "distribution": "lognormal",
        "mean": 20.0,
        "sd": round(math.sqrt(200), 4),
    }
