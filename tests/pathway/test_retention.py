"""Retention: persons whose cases all closed longer ago than their period are erased, once;
a person with a case still open keeps her data."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.cases import service as case_service
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.pathway import retention
from tests.support.cli import ruta
from tests.support.clients import client_from
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, case_body, person_body

PERIODS = {"default": 365, "declined_services": 30}


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    police: SignedInUser
    settings: Settings

    @property
    def db(self) -> Database:
        database: Database = self.app.state.db
        return database

    async def case(self, **person: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/cases", json=case_body(person=person_body(**person)), headers=self.police.headers
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def close(self, case: dict[str, Any], reason: str) -> None:
        response = await self.client.post(
            f"/v1/cases/{case['id']}/transitions",
            json={"to": "closed", "reason": reason},
            headers=self.police.headers,
        )
        assert response.status_code == 201, response.text

    async def person_status(self, case: dict[str, Any]) -> int:
        response = await self.client.get(
            f"/v1/cases/{case['id']}/person", headers=self.police.headers
        )
        return response.status_code


@pytest.fixture
async def world(fresh_settings: Settings) -> AsyncIterator[World]:
    app = create_app(fresh_settings)
    async with app.router.lifespan_context(app), client_from(app, "203.0.113.42") as client:
        police = await Factory(app.state.db, app.state.security).user("PNP", Role.identifier)
        yield World(app, client, police, fresh_settings)


async def test_retention_erases_persons_whose_cases_all_closed_past_their_period_once(
    world: World,
) -> None:
    w = world
    declined = await w.case()
    await w.close(declined, "declined_services")
    lost = await w.case()
    await w.close(lost, "lost_contact")
    document = {"type": "dni", "number": "70012345"}
    returned_closed = await w.case(document=document)
    await w.close(returned_closed, "declined_services")
    returned_open = await w.case(document=document)  # the same person, identified again
    assert returned_open["person_id"] == returned_closed["person_id"]
    still_open = await w.case()
    later = utcnow() + timedelta(days=31)

    async with w.db.session(write=False) as session:
        plan = await retention.plan_retention(session, periods=PERIODS, now=later)
    async with w.db.session() as session:
        done = await retention.run_retention(
            session, keyring=Keyring(w.settings), periods=PERIODS, now=later
        )
    async with w.db.session() as session:
        again = await retention.run_retention(
            session, keyring=Keyring(w.settings), periods=PERIODS, now=later
        )

    # Only the person closed as declined_services 30 days ago; lost_contact keeps a year;
    # the person identified again keeps her data while that case is open.
    assert [(d.person_id.hex, d.reason) for d in plan.due] == [
        (declined["person_id"].replace("-", ""), "declined_services")
    ]
    assert plan.kept_with_open_case == 1
    assert done.due == plan.due
    assert again.due == ()
    assert await w.person_status(declined) == 410
    for kept in (lost, returned_closed, returned_open, still_open):
        assert await w.person_status(kept) == 200
    rows = await query(
        w.db,
        "SELECT action, changes FROM audit_event WHERE action IN ('person.erased',"
        " 'retention.run') ORDER BY occurred_at",
    )
    changes = [(a, c if isinstance(c, dict) else json.loads(c)) for a, c in rows]
    assert [a for a, _ in changes] == ["person.erased", "retention.run", "retention.run"]
    assert changes[0][1]["legal_basis"] == {"to": "retention_period_ended"}
    assert changes[0][1]["case_ids"] == {"to": [declined["id"]]}
    assert [c["persons_erased"] for _, c in changes[1:]] == [{"to": 1}, {"to": 0}]


async def test_ruta_retention_plan_and_run_name_cases_never_persons(world: World) -> None:
    w = world
    closed = await w.case(given_name="Eufemia", family_name="Ticona")
    await w.close(closed, "transferred")
    settings = w.settings.model_copy(update={"retention_days": {"default": 0}})

    planned = ruta(settings, "retention", "plan", "--json")
    ran = ruta(settings, "retention", "run")
    again = ruta(settings, "retention", "run", "--json")
    wrong = ruta(
        w.settings.model_copy(update={"retention_days": {"reintegrated": 1, "forever": 2}}),
        "retention",
        "plan",
    )

    assert planned.returncode == 0, planned.stderr
    shown = json.loads(planned.stdout)
    assert shown["persons"] == 1
    assert shown["by_closing_reason"]["transferred"]["case_ids"] == [closed["id"]]
    assert ran.returncode == 0, ran.stderr
    assert "erased 1 persons" in ran.stdout
    assert closed["id"] in ran.stdout
    assert json.loads(again.stdout)["persons"] == 0
    for output in (planned, ran, again):
        assert "Eufemia" not in output.stdout + output.stderr
        assert "Ticona" not in output.stdout + output.stderr
    assert await w.person_status(closed) == 410
    assert wrong.returncode == 2
    assert "forever is not a closing reason" in wrong.stderr


def _closure(person: uuid.UUID, *, days_ago: int | None, reason: str = "reintegrated") -> Any:
    closed = days_ago is not None
    return case_service.CaseClosure(
        case_id=uuid.uuid4(),
        person_id=person,
        closed=closed,
        closed_at=utcnow() - timedelta(days=days_ago) if days_ago is not None else None,
        reason=reason if closed else None,
    )


def test_plan_keeps_persons_still_needed_and_those_with_no_period() -> None:
    due, recent, in_court, linked, root, forever = (uuid.uuid4() for _ in range(6))
    court_case = _closure(in_court, days_ago=400)
    closures = [
        _closure(due, days_ago=400),
        _closure(recent, days_ago=400),
        _closure(recent, days_ago=10),
        court_case,
        # A record linked into another: her cases count as the surviving record's.
        _closure(linked, days_ago=400),
        _closure(root, days_ago=10),
        _closure(forever, days_ago=4000, reason="deceased"),
    ]

    plan = retention.plan_from(
        closures,
        roots={linked: root},
        erased=set(),
        in_legal_work={court_case.case_id},
        periods={"reintegrated": 365},
        now=utcnow(),
    )

    assert [d.person_id for d in plan.due] == [due]
    assert (plan.kept_too_recent, plan.kept_in_legal_work) == (2, 1)
    assert retention.period_of("deceased", {"reintegrated": 365}) is None


def test_retention_periods_name_closing_reasons() -> None:
    with pytest.raises(retention.InvalidRetentionPeriods):
        retention.check_periods({"default": 10, "closed_forever": 1})
    with pytest.raises(retention.InvalidRetentionPeriods):
        retention.check_periods({"default": -1})
    assert retention.check_periods({"default": 0, "not_a_victim": 90}) == {
        "default": 0,
        "not_a_victim": 90,
    }
