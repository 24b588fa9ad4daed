"""The tables of what happened to the persons after identification: referred (V6),
assisted (V7), sheltered with bed-nights (V8), unmet needs (V8U) and children held in police
stations with the hours held (V9). Each person once per cell; uncounted cases excluded."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from service.core.time import utcnow
from service.identity.rules import Role
from service.stats.catalogue import CATALOGUE, By, ExclusionReason, Measure, breakdown
from service.stats.counting import PERU_TIME, Scope, TrueTable, count_table
from tests.stats.conftest import World
from tests.support.factories import SignedInUser, create_case, person_body, request_placement


async def _post(
    world: World,
    user: SignedInUser,
    path: str,
    body: dict[str, Any] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    response = await world.client.post(path, json=body, headers=user.headers)
    assert response.status_code == expect, response.text
    data: dict[str, Any] = response.json()
    return data


async def _count(world: World, code: str, known_on: datetime | None = None) -> TrueTable:
    spec = CATALOGUE[code]
    today = datetime.now(PERU_TIME).date()
    async with world.db.session(write=False) as session:
        return await count_table(
            session,
            spec=spec,
            dimensions=breakdown(spec, None),
            scope=Scope(
                start=today - timedelta(days=1),
                end=today + timedelta(days=1),
                known_on=known_on or utcnow(),
            ),
        )


@pytest.fixture(scope="module")
async def story(world: World) -> dict[str, Any]:
    """A girl held, referred, assisted and sheltered; a woman whose referral MIMP refused;
    a man MIMP accepted for shelter but no facility takes; and a girl who never consented
    to statistics."""
    police = await world.factory.user("PNP", Role.identifier)
    mimp = await world.factory.user("MIMP", Role.caseworker)
    consent = {
        "purposes": ["services", "data_sharing", "statistics"],
        "share_with": ["MIMP"],
        "language": "es",
    }
    today = date.today().isoformat()
    girl = await create_case(world.client, police, identified_on=today, region="17")
    woman = await create_case(
        world.client, police, identified_on=today, person=person_body(age_estimate=30)
    )
    man = await create_case(
        world.client,
        police,
        identified_on=today,
        exploitation=[{"form": "forced_labour", "sector": "gold_mining"}],
        person=person_body(gender="male", age_estimate=38),
    )
    silent = await create_case(world.client, police, identified_on=today)
    for case in (girl, woman, man):
        await _post(world, police, f"/v1/cases/{case['id']}/consents", consent)
    # She agrees to services and to MIMP seeing her data, not to statistics.
    services_only = {**consent, "purposes": ["services", "data_sharing"]}
    await _post(world, police, f"/v1/cases/{silent['id']}/consents", services_only)

    custody = await _post(
        world,
        police,
        f"/v1/cases/{girl['id']}/custody-periods",
        {"place_kind": "police_station", "start": (utcnow() - timedelta(hours=5)).isoformat()},
    )
    before_release = utcnow()
    await _post(
        world,
        police,
        f"/v1/custody-periods/{custody['id']}/end",
        {"end": (utcnow() - timedelta(hours=1)).isoformat()},
        expect=200,
    )
    # MIMP places those it accepted for shelter: the police do not place.
    for case in (girl, woman, silent, man):
        purpose = "shelter" if case is girl or case is man else "protection_services"
        referral = await _post(
            world,
            police,
            f"/v1/cases/{case['id']}/referrals",
            {"to_org": "MIMP", "purpose": purpose},
        )
        if case is woman:
            await _post(
                world,
                mimp,
                f"/v1/referrals/{referral['id']}/reject",
                {"reason": "outside our mandate"},
                expect=200,
            )
        elif case is girl or case is man:
            await _post(world, mimp, f"/v1/referrals/{referral['id']}/accept", expect=200)
    await _post(
        world,
        mimp,
        f"/v1/cases/{girl['id']}/assistance",
        {"kind": "psychological", "provided_on": today},
    )
    placed = await request_placement(world.client, mimp, girl["id"])
    assert placed.status_code == 201, placed.text
    assert placed.json()["outcome"] == "placed", placed.text
    facility = await world.client.get(
        f"/v1/facilities/{placed.json()['placement']['facility_id']}", headers=mimp.headers
    )
    unmet = await request_placement(world.client, mimp, man["id"])
    assert unmet.json()["outcome"] == "unmet_need", unmet.text
    return {"facility_kind": facility.json()["kind"], "before_release": before_release}


async def test_referred_persons_by_institution_and_outcome(
    world: World, story: dict[str, Any]
) -> None:
    table = await _count(world, "V6")

    assert table.cells == {
        ("MIMP", "accepted", "minor", "female"): 1,
        ("MIMP", "accepted", "adult", "male"): 1,
        ("MIMP", "rejected", "adult", "female"): 1,
    }
    assert table.total == 3
    assert table.excluded[ExclusionReason.no_consent_or_basis] == 1  # the silent girl


async def test_assisted_sheltered_and_unmet(world: World, story: dict[str, Any]) -> None:
    assisted = await _count(world, "V7")
    sheltered = await _count(world, "V8")
    unmet = await _count(world, "V8U")

    assert assisted.cells == {("psychological", "minor", "female"): 1}
    assert sheltered.cells == {(story["facility_kind"], "minor", "female"): 1}
    nights = sheltered.measures[Measure.bed_nights]
    assert nights is not None
    assert 0 <= nights < 0.1  # placed a moment ago
    assert unmet.cells == {("no_facility_for_adult_men", "adult", "male"): 1}


async def test_children_held_with_the_hours_known_on_each_day(
    world: World, story: dict[str, Any]
) -> None:
    now = await _count(world, "V9")
    before = await _count(world, "V9", known_on=story["before_release"])

    assert now.dimensions == (By.gender,)
    assert now.cells == {("female",): 1}
    assert now.measures[Measure.periods_ended] == 1
    assert now.measures[Measure.hours_median] == pytest.approx(4.0, abs=0.1)
    assert now.measures[Measure.hours_p90] == pytest.approx(4.0, abs=0.1)
    # Before her release was recorded she was still held: counted, with no hours yet.
    assert before.cells == {("female",): 1}
    assert before.measures[Measure.periods_ended] == 0
    assert before.measures[Measure.hours_median] is None


def test_v9_is_always_by_gender_alone() -> None:
    assert breakdown(CATALOGUE["V9"], None) == (By.gender,)
