"""The objects the access tests ask about, built through the API as the pathway would: one
fresh object per question, so each request is valid apart from who asks."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from service.core.time import utcnow
from service.identity.rules import Role
from tests.legal.helpers import add_defendant, bring_to_trial, open_proceeding
from tests.repatriation.helpers import abroad_body, consent, foreign_body, home_body, plan
from tests.support.factories import (
    Factory,
    SignedInUser,
    create_case,
    create_facility,
    marriage_case,
    person_body,
    refer_for_shelter,
    request_placement,
)

# Who asks: every role of the organization involved in the object, and a caseworker of an
# organization that is not involved in it.
UNINVOLVED = "uninvolved"
PRINCIPALS = (*(r.value for r in Role), UNINVOLVED)
UNINVOLVED_ORG = "MINEDU"

# A marker person: if any of these appear in a response to someone who may not see her,
# identifying data leaked.
MARKER_NAME = "Zenaida"
MARKER_FAMILY = "Quillahuamán-Marker"
MARKER_DOCUMENT = "87654329"
MARKER_BIRTH = "2010-07-23"
MARKERS = (MARKER_NAME, MARKER_FAMILY, MARKER_DOCUMENT, MARKER_BIRTH)


def marker_person() -> dict[str, Any]:
    """The identifying values of the marker person."""
    return {
        "given_name": MARKER_NAME,
        "family_name": MARKER_FAMILY,
        "birth_date": MARKER_BIRTH,
        "document": {"type": "dni", "number": MARKER_DOCUMENT},
    }


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    auth: bool = True
    headers: dict[str, str] | None = None


class World:
    """Users by (organization, role), made once, and the builders of fresh objects."""

    def __init__(
        self, client: httpx.AsyncClient, factory: Factory, *, markers: bool = False
    ) -> None:
        self.client = client
        self.factory = factory
        self._users: dict[tuple[str, str], SignedInUser] = {}
        # With markers, every person is the marker person (with a document of her own per
        # case, so that cases stay distinct persons); `documents` lists those numbers.
        self.markers = markers
        self.documents: list[str] = []

    async def user(self, org: str, role: Role | str) -> SignedInUser:
        key = (org, Role(role).value)
        if key not in self._users:
            self._users[key] = await self.factory.user(org, Role(role))
        return self._users[key]

    async def principal(self, org: str, who: str) -> SignedInUser:
        if who == UNINVOLVED:
            return await self.user(UNINVOLVED_ORG, Role.caseworker)
        return await self.user(org, who)

    async def post(self, user: SignedInUser, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=user.headers)
        assert response.status_code in (200, 201, 202), f"{path}: {response.text}"
        data: dict[str, Any] = response.json()
        return data

    # Owners of the objects: separate users, so the principals own nothing.
    async def police(self) -> SignedInUser:
        return await self.user("PNP", Role.identifier)

    async def mimp(self) -> SignedInUser:
        return await self.user("MIMP", Role.caseworker)

    async def admin(self) -> SignedInUser:
        return await self.user("MIMP", Role.admin)

    async def prosecutor(self) -> SignedInUser:
        return await self.user("MP", Role.identifier)

    async def consulate(self) -> SignedInUser:
        return await self.user("RREE", Role.identifier)

    async def defender(self) -> SignedInUser:
        return await self.user("MINJUS", Role.legal_aid)

    async def case(self, user: SignedInUser | None = None, **overrides: Any) -> dict[str, Any]:
        """A case the police (or `user`) identified: that organization is involved."""
        if self.markers:
            document = f"9{uuid.uuid4().int % 10**7:07d}"
            self.documents.append(document)
            person = {**overrides.get("person", person_body()), **marker_person()}
            person.pop("age_estimate", None)
            person["document"] = {"type": "dni", "number": document}
            overrides = {**overrides, "person": person}
        return await create_case(self.client, user or await self.police(), **overrides)

    async def shelter_case(self, **overrides: Any) -> dict[str, Any]:
        """A case the police referred for shelter to MIMP, which accepted."""
        case = await self.case(**overrides)
        await refer_for_shelter(self.client, await self.police(), await self.mimp(), case["id"])
        return case

    async def child_in_custody(self) -> dict[str, Any]:
        """A girl held in a police station (an alert is open) and her custody period."""
        case = await self.case()
        start = (utcnow() - timedelta(hours=2)).isoformat()
        custody = await self.post(
            await self.police(),
            f"/v1/cases/{case['id']}/custody-periods",
            {"place_kind": "police_station", "start": start},
        )
        return {"case": case, "custody": custody}

    async def alert_id(self) -> str:
        held = await self.child_in_custody()
        response = await self.client.get(
            "/v1/alerts",
            params={"case_id": held["case"]["id"]},
            headers=(await self.police()).headers,
        )
        return str(response.json()["items"][0]["id"])

    async def consent_id(self, case_id: str) -> str:
        given = await consent(self.client, await self.police(), case_id, ["services"])
        return str(given["id"])

    async def referral_to(
        self, org: str, case_id: str, purpose: str = "protection_services"
    ) -> str:
        police = await self.police()
        await consent(self.client, police, case_id, ["services", "data_sharing"], [org])
        sent = await self.post(
            police, f"/v1/cases/{case_id}/referrals", {"to_org": org, "purpose": purpose}
        )
        return str(sent["id"])

    async def facility(self, **overrides: Any) -> dict[str, Any]:
        """A facility for the tests' women and girls only: no adult man finds a bed in it,
        so other tests' unmet needs stay what they are."""
        body = {"genders": ["female"], **overrides}
        return await create_facility(self.client, await self.admin(), **body)

    async def placement(self, *, hold: bool = False) -> dict[str, Any]:
        """A placement (or a hold) of a shelter case in a facility of its own."""
        case = await self.shelter_case(**marriage_case())
        facility = await self.facility()
        body: dict[str, Any] = {"facility_id": facility["id"]}
        if hold:
            body["hold_hours"] = 12
        response = await request_placement(self.client, await self.mimp(), case["id"], **body)
        assert response.status_code == 201, response.text
        placement: dict[str, Any] = response.json()["placement"]
        return placement

    async def waiting_request(self) -> str:
        """A request waiting for a bed at a full facility."""
        facility = await self.facility(capacity=1)
        mimp = await self.mimp()
        first = await self.shelter_case(**marriage_case())
        second = await self.shelter_case(**marriage_case())
        await request_placement(self.client, mimp, first["id"], facility_id=facility["id"])
        waiting = await request_placement(
            self.client, mimp, second["id"], facility_id=facility["id"]
        )
        assert waiting.status_code == 202, waiting.text
        return str(waiting.json()["request_id"])

    async def assignment(self, case_id: str) -> str:
        assigned = await self.post(
            await self.police(),
            f"/v1/cases/{case_id}/legal-aid",
            {"defender_id": str((await self.defender()).actor.user_id)},
        )
        return str(assigned["id"])

    async def proceeding(self, *, trial: bool = False) -> dict[str, Any]:
        """A proceeding the prosecutors opened about a case they identified."""
        prosecutor = await self.prosecutor()
        case = await self.case(prosecutor)
        proceeding = await open_proceeding(self.client, prosecutor, [(case["id"], "2026-01-10")])
        if trial:
            await bring_to_trial(self.client, prosecutor, proceeding["id"])
        return {"case": case, "proceeding": proceeding}

    async def defendant_at_trial(self) -> str:
        made = await self.proceeding(trial=True)
        defendant = await add_defendant(
            self.client, await self.prosecutor(), made["proceeding"]["id"]
        )
        return str(defendant["id"])

    async def restitution_order(self) -> str:
        made = await self.proceeding(trial=True)
        order = await self.post(
            await self.user("PJ", Role.identifier),
            f"/v1/proceedings/{made['proceeding']['id']}/restitution-orders",
            {"case_id": made["case"]["id"], "amount_soles": "1000.00", "ordered_on": "2026-10-01"},
        )
        return str(order["id"])

    async def repatriation(self) -> str:
        """A Peruvian exploited in Argentina, her return home planned by the consulate."""
        consulate = await self.consulate()
        case = await self.case(consulate, **abroad_body(region=None))
        planned = await plan(self.client, consulate, case["id"], **home_body())
        assert planned.status_code == 201, planned.text
        return str(planned.json()["id"])

    async def foreign_case(self) -> dict[str, Any]:
        return await self.case(**foreign_body())

    async def statistics_basis(self, case_id: str) -> str:
        basis = await self.post(
            await self.user("PNP", Role.caseworker),
            f"/v1/cases/{case_id}/statistics-bases",
            {"basis": "statutory_duty"},
        )
        return str(basis["id"])

    async def simulation(self, org: str, body: dict[str, Any] | None = None) -> str:
        """A simulation requested by an analyst of the organization (visible to it)."""
        job = await self.post(
            await self.user(org, Role.analyst),
            "/v1/simulations",
            body or {"reference": "peru-2016", "replications": 2, "seed": 3},
        )
        return str(job["id"])

    async def finished_simulation(self, org: str, job: str) -> None:
        """Wait until the job has run (its charts exist only then)."""
        analyst = await self.user(org, Role.analyst)
        while True:
            response = await self.client.get(f"/v1/simulations/{job}", headers=analyst.headers)
            if response.json()["status"] in {"succeeded", "failed"}:
                assert response.json()["status"] == "succeeded", response.text
                return
            await asyncio.sleep(0.1)

    async def settled(self, call: Call, response: httpx.Response, org: str) -> None:
        """Wait for what the call started in the background to end: a simulation job would
        otherwise write its audit events during a later test, which may be counting them."""
        if call.method == "POST" and call.path == "/v1/simulations" and response.status_code == 202:
            await self.finished_simulation(org, response.json()["id"])

    async def release(self) -> str:
        made = await self.post(
            await self.user("MIMP", Role.analyst),
            "/v1/stats/releases",
            {"year": 2016, "tables": [{"code": "V1"}]},
        )
        return str(made["id"])


def uid() -> str:
    return str(uuid.uuid4())
