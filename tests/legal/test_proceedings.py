"""Criminal proceedings through HTTP: sentencing minimums at each age boundary, reduced
charges, who records each step, and the access rule."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.identity.rules import Role
from tests.legal.helpers import (
    add_defendant,
    audit_actions,
    bring_to_trial,
    move,
    open_proceeding,
    record_outcome,
)
from tests.support.databases import query
from tests.support.factories import Factory, create_case, person_body

# Identified on 14 March 2026 (the factory's day) with a birth date on that same day of the
# month: the stored age then pins the birthday exactly, so a day either side of it counts.
IDENTIFIED_ON = "2026-03-14"


async def _case_born(client: httpx.AsyncClient, user: Any, birth_date: str) -> dict[str, Any]:
    return await create_case(
        client,
        user,
        identified_on=IDENTIFIED_ON,
        person=person_body(age_estimate=None, birth_date=birth_date),
    )


def _sentence(months: int) -> dict[str, int]:
    return {"years": months // 12, "months": months % 12}


@pytest.mark.parametrize(
    ("birth_date", "offence_on", "age", "minimum_months"),
    [
        ("2012-03-14", "2026-03-13", 13, 15 * 12),  # the day before the 14th birthday
        ("2012-03-14", "2026-03-14", 14, 12 * 12),  # the 14th birthday
        ("2012-03-14", "2026-03-15", 14, 12 * 12),  # the day after
        ("2008-03-14", "2026-03-13", 17, 12 * 12),  # the day before the 18th birthday
        ("2008-03-14", "2026-03-14", 18, 8 * 12),  # the 18th birthday
        ("2008-03-14", "2026-03-15", 18, 8 * 12),  # the day after
        # Only the age at identification and the birth year are kept: the records allow a
        # birthday as late as 14 March, so on 1 February she may still have been 13.
        ("2012-01-10", "2026-02-01", 13, 15 * 12),
    ],
)
async def test_a_trafficking_sentence_below_the_minimum_for_the_victims_age_is_flagged(
    client: httpx.AsyncClient,
    factory: Factory,
    birth_date: str,
    offence_on: str,
    age: int,
    minimum_months: int,
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    case = await _case_born(client, prosecutor, birth_date)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], offence_on)])
    short = await add_defendant(client, prosecutor, proceeding["id"])
    enough = await add_defendant(client, prosecutor, proceeding["id"])
    await bring_to_trial(client, prosecutor, proceeding["id"])

    below = await record_outcome(
        client,
        court,
        short["id"],
        outcome="convicted",
        sentence=_sentence(minimum_months - 1),
    )
    at_minimum = await record_outcome(
        client, court, enough["id"], outcome="convicted", sentence=_sentence(minimum_months)
    )

    assert below.status_code == 200, below.text
    assert at_minimum.status_code == 200, at_minimum.text
    assert (short["label"], enough["label"]) == ("D1", "D2")
    assert below.json()["below_legal_minimum"] is True, f"age {age}"
    assert below.json()["charge"] == "trafficking"
    assert below.json()["sentence"] == _sentence(minimum_months - 1)
    assert below.json()["rule_version"] == "sentencing/2017.1"
    assert at_minimum.json()["below_legal_minimum"] is False, f"age {age}"
    assert at_minimum.json()["charge_reduced"] is False


async def test_the_youngest_victim_sets_the_minimum_and_an_unknown_age_takes_the_adult_one(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    adult = await _case_born(client, prosecutor, "1990-03-14")
    child = await _case_born(client, prosecutor, "2012-03-14")
    unknown = await create_case(client, prosecutor, person=person_body(age_estimate=None))
    ring = await open_proceeding(
        client, prosecutor, [(adult["id"], "2026-01-10"), (child["id"], "2026-03-13")]
    )
    alone = await open_proceeding(client, prosecutor, [(unknown["id"], "2026-01-10")])
    in_ring = await add_defendant(client, prosecutor, ring["id"])
    of_unknown = await add_defendant(client, prosecutor, alone["id"])
    for proceeding in (ring, alone):
        await bring_to_trial(client, prosecutor, proceeding["id"])

    ten_years = {"outcome": "convicted", "sentence": {"years": 10, "months": 0}}
    ring_outcome = await record_outcome(client, court, in_ring["id"], **ten_years)
    unknown_outcome = await record_outcome(client, court, of_unknown["id"], **ten_years)

    # The child was 13 on the day of the offence against her: 15 years at least.
    assert ring_outcome.json()["below_legal_minimum"] is True
    assert unknown_outcome.json()["below_legal_minimum"] is False


async def test_a_trafficking_complaint_convicted_on_a_lesser_charge_is_charge_reduced(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    case = await _case_born(client, prosecutor, "1995-03-14")
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    pimp = await add_defendant(client, prosecutor, proceeding["id"], public_official=True)
    aggravated = await add_defendant(client, prosecutor, proceeding["id"])
    labour = await add_defendant(client, prosecutor, proceeding["id"], "forced_labour")
    await bring_to_trial(client, prosecutor, proceeding["id"])

    reduced = await record_outcome(
        client,
        court,
        pimp["id"],
        outcome="convicted",
        charge="pimping",
        sentence={"years": 4, "months": 0},
        fine_soles="5000.00",
    )
    aggravated_below = await record_outcome(
        client,
        court,
        aggravated["id"],
        outcome="convicted",
        charge="aggravated_trafficking",
        sentence={"years": 11, "months": 6},
    )
    labour_ok = await record_outcome(
        client, court, labour["id"], outcome="convicted", sentence={"years": 6, "months": 0}
    )

    assert reduced.status_code == 200, reduced.text
    assert reduced.json()["charge_reduced"] is True
    assert reduced.json()["below_legal_minimum"] is False  # pimping has no minimum here
    assert reduced.json()["fine_soles"] == "5000.00"
    assert reduced.json()["public_official"] is True
    assert aggravated_below.json()["charge_reduced"] is False
    assert aggravated_below.json()["below_legal_minimum"] is True  # art. 153-A: 12 years
    assert labour_ok.json()["below_legal_minimum"] is False  # art. 168-B: 6 years
    assert labour_ok.json()["charge_reduced"] is False
    # Statistics count both flags in SQL.
    flagged = await query(
        db,
        "SELECT d.label, d.charge_reduced, d.below_legal_minimum FROM defendant d"
        " JOIN proceeding p ON p.id = d.proceeding_id"
        " WHERE p.complaint_number = :n AND (d.charge_reduced OR d.below_legal_minimum)"
        " ORDER BY d.label",
        n=proceeding["complaint_number"],
    )
    assert [(label, bool(r), bool(b)) for label, r, b in flagged] == [
        ("D1", True, False),
        ("D2", False, True),
    ]


async def test_the_prosecutor_and_the_court_each_record_only_their_own_steps(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    case = await create_case(client, prosecutor)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    pid = proceeding["id"]
    first = await add_defendant(client, prosecutor, pid)
    second = await add_defendant(client, prosecutor, pid)

    convicted_by_prosecutor = await record_outcome(
        client, prosecutor, first["id"], outcome="convicted", sentence={"years": 9, "months": 0}
    )
    suspended = await record_outcome(client, prosecutor, second["id"], outcome="suspended")
    to_investigation = await move(client, prosecutor, pid, "investigation", "2026-04-10")
    backwards = await move(client, prosecutor, pid, "complaint", "2026-04-11")
    not_a_court = await move(client, prosecutor, pid, "trial", "2026-06-01", court="MIMP")
    no_court = await move(client, prosecutor, pid, "trial", "2026-06-01")
    to_trial = await move(client, prosecutor, pid, "trial", "2026-06-01", court="PJ")
    court_sees_case = await client.get(f"/v1/cases/{case['id']}", headers=court.headers)
    by_court_too_early = await move(client, court, pid, "decided", "2026-10-02")
    defendant_by_court = await client.post(
        f"/v1/proceedings/{pid}/defendants", json={"charge_filed": "pimping"}, headers=court.headers
    )
    dismissed_at_trial = await record_outcome(client, prosecutor, first["id"], outcome="dismissed")
    convicted = await record_outcome(
        client, court, first["id"], outcome="convicted", sentence={"years": 9, "months": 0}
    )
    ongoing = await record_outcome(client, court, second["id"], outcome="ongoing")
    acquitted_with_fine = await record_outcome(
        client, court, second["id"], outcome="acquitted", fine_soles="10.00"
    )
    decided_by_prosecutor = await move(client, prosecutor, pid, "decided", "2026-10-02")
    decided = await move(client, court, pid, "decided", "2026-10-02")
    after_decision = await add_defendant_response(client, prosecutor, pid)

    assert convicted_by_prosecutor.status_code == 403
    assert convicted_by_prosecutor.json()["code"] == "court_only"
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["outcome"] == "suspended"
    assert to_investigation.status_code == 200, to_investigation.text
    assert backwards.status_code == 409
    assert backwards.json()["code"] == "status_not_forward"
    assert not_a_court.status_code == 422
    assert not_a_court.json()["errors"][0]["field"] == "court"
    assert no_court.status_code == 422
    assert to_trial.status_code == 200, to_trial.text
    assert to_trial.json()["court"] == "PJ"
    assert [s["status"] for s in to_trial.json()["status_history"]] == [
        "complaint",
        "investigation",
        "trial",
    ]
    assert court_sees_case.status_code == 200
    assert by_court_too_early.status_code == 409
    assert by_court_too_early.json()["code"] == "proceeding_stage_conflict"
    assert defendant_by_court.status_code == 403
    assert defendant_by_court.json()["code"] == "prosecutor_only"
    assert dismissed_at_trial.status_code == 409
    assert convicted.status_code == 200, convicted.text
    assert ongoing.status_code == 422
    assert acquitted_with_fine.status_code == 422
    assert acquitted_with_fine.json()["errors"][0]["field"] == "sentence"
    assert decided_by_prosecutor.status_code == 403
    assert decided_by_prosecutor.json()["code"] == "court_only"
    # The suspension before trial stands: every defendant has an outcome.
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "decided"
    assert after_decision.status_code == 409
    actions = await audit_actions(db, pid)
    assert actions.count("proceeding.created") == 1
    assert actions.count("proceeding.defendant_added") == 2
    assert actions.count("proceeding.status_changed") == 3
    assert actions.count("proceeding.outcome_recorded") == 2
    case_actions = await audit_actions(db, case["id"])
    assert "proceeding.case_linked" in case_actions
    outcomes = await query(
        db,
        "SELECT o.outcome FROM defendant_outcome o JOIN defendant d ON d.id = o.defendant_id"
        " JOIN proceeding p ON p.id = d.proceeding_id WHERE p.complaint_number = :n"
        " ORDER BY o.recorded_at",
        n=proceeding["complaint_number"],
    )
    assert [o for (o,) in outcomes] == ["suspended", "convicted"]


async def add_defendant_response(
    client: httpx.AsyncClient, user: Any, proceeding_id: str
) -> httpx.Response:
    return await client.post(
        f"/v1/proceedings/{proceeding_id}/defendants",
        json={"charge_filed": "trafficking"},
        headers=user.headers,
    )


async def test_only_a_prosecutor_opens_a_proceeding_with_cases_it_sees(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    police = await factory.user("PNP", Role.identifier)
    own = await create_case(client, prosecutor)
    unseen = await create_case(client, police)

    def body(*case_ids: str, office: str = "FISTRAP-CUSCO") -> dict[str, Any]:
        return {
            "complaint_number": "CF-0042-2026",
            "prosecutor_office": office,
            "complaint_filed_on": "2026-04-01",
            "cases": [{"case_id": c, "offence_on": "2026-01-10"} for c in case_ids],
        }

    by_police = await client.post(
        "/v1/proceedings", json=body(unseen["id"]), headers=police.headers
    )
    unseen_case = await client.post(
        "/v1/proceedings", json=body(own["id"], unseen["id"]), headers=prosecutor.headers
    )
    unknown_office = await client.post(
        "/v1/proceedings",
        json=body(own["id"], office="FISTRAP-ATLANTIS"),
        headers=prosecutor.headers,
    )
    created = await client.post("/v1/proceedings", json=body(own["id"]), headers=prosecutor.headers)
    again = await client.post("/v1/proceedings", json=body(own["id"]), headers=prosecutor.headers)
    relinked = await client.post(
        f"/v1/proceedings/{created.json()['id']}/cases",
        json={"case_id": own["id"], "offence_on": "2026-01-10"},
        headers=prosecutor.headers,
    )

    assert by_police.status_code == 403
    assert by_police.json()["code"] == "prosecutor_only"
    assert unseen_case.status_code == 422
    assert unseen_case.json()["errors"][0]["field"] == "cases.1.case_id"
    assert unknown_office.status_code == 422
    assert unknown_office.json()["errors"][0]["field"] == "prosecutor_office"
    assert created.status_code == 201, created.text
    assert created.json()["prosecutor"] == "MP"
    assert created.json()["prosecutor_office"] == "FISTRAP-CUSCO"
    assert created.json()["status"] == "complaint"
    assert again.status_code == 409
    assert again.json()["code"] == "proceeding_exists"
    assert relinked.status_code == 409
    assert relinked.json()["code"] == "case_already_linked"


async def test_a_proceeding_is_read_through_its_cases_and_hidden_from_everyone_else(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    defender = await factory.user("MINJUS", Role.legal_aid)
    outsider = await factory.user("MIMP", Role.caseworker)
    analyst = await factory.user("MIMP", Role.analyst)
    defended = await create_case(client, prosecutor)
    other = await create_case(client, prosecutor)
    assigned = await client.post(
        f"/v1/cases/{defended['id']}/legal-aid",
        json={"defender_id": str(defender.actor.user_id)},
        headers=prosecutor.headers,
    )
    assert assigned.status_code == 201, assigned.text
    proceeding = await open_proceeding(
        client, prosecutor, [(defended["id"], "2026-01-10"), (other["id"], "2026-02-10")]
    )
    pid = proceeding["id"]
    defendant = await add_defendant(client, prosecutor, pid)

    seen = await client.get(f"/v1/proceedings/{pid}", headers=defender.headers)
    listed = await client.get("/v1/proceedings", headers=defender.headers)
    of_case = await client.get(f"/v1/cases/{defended['id']}/proceedings", headers=defender.headers)
    not_the_prosecutor = await add_defendant_response(client, defender, pid)

    assert seen.status_code == 200, seen.text
    assert [c["case_id"] for c in seen.json()["cases"]] == [defended["id"]]
    assert seen.json()["case_count"] == 2
    assert [d["label"] for d in seen.json()["defendants"]] == ["D1"]
    assert pid in [p["id"] for p in listed.json()["items"]]
    assert [p["id"] for p in of_case.json()] == [pid]
    assert not_the_prosecutor.status_code == 403

    outsider_listed = await client.get("/v1/proceedings", headers=outsider.headers)
    assert pid not in [p["id"] for p in outsider_listed.json()["items"]]
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/proceedings/{pid}", None),
        (
            "POST",
            f"/v1/proceedings/{pid}/cases",
            {"case_id": other["id"], "offence_on": "2026-01-10"},
        ),
        ("POST", f"/v1/proceedings/{pid}/defendants", {"charge_filed": "trafficking"}),
        (
            "POST",
            f"/v1/proceedings/{pid}/status",
            {"status": "investigation", "effective_on": "2026-04-10"},
        ),
        (
            "POST",
            f"/v1/proceedings/{pid}/restitution-orders",
            {"case_id": other["id"], "amount_soles": "100.00", "ordered_on": "2026-10-01"},
        ),
    ]
    for method, url, body in requests:
        hidden = await client.request(method, url, json=body, headers=outsider.headers)
        assert hidden.status_code == 404, (url, hidden.text)
        assert hidden.json()["code"] == "proceeding_not_found"
        forbidden = await client.request(method, url, json=body, headers=analyst.headers)
        assert forbidden.status_code == 403, (url, forbidden.text)
    outcome = await record_outcome(client, outsider, defendant["id"], outcome="dismissed")
    assert outcome.status_code == 404
    assert outcome.json()["code"] == "defendant_not_found"
    assert (
        await record_outcome(client, analyst, defendant["id"], outcome="dismissed")
    ).status_code == 403
    for url in (f"/v1/cases/{other['id']}/proceedings", "/v1/proceedings"):
        assert (await client.get(url, headers=analyst.headers)).status_code == 403
    case_hidden = await client.get(f"/v1/cases/{other['id']}/proceedings", headers=outsider.headers)
    assert case_hidden.status_code == 404
    assert case_hidden.json()["code"] == "case_not_found"


async def test_defendants_added_at_once_get_distinct_labels_in_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    case = await create_case(client, prosecutor)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])

    answers = await asyncio.gather(
        *(add_defendant_response(client, prosecutor, proceeding["id"]) for _ in range(4))
    )

    assert [a.status_code for a in answers] == [201] * 4
    assert sorted(a.json()["label"] for a in answers) == ["D1", "D2", "D3", "D4"]


async def test_any_user_lists_the_specialized_prosecutor_offices(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)

    response = await client.get("/v1/prosecutor-offices", headers=analyst.headers)
    anonymous = await client.get("/v1/prosecutor-offices")

    assert response.status_code == 200
    offices = {o["code"]: o for o in response.json()}
    assert offices["FISTRAP-LIMA"]["region"] == "15"
    assert {"FISTRAP-CUSCO", "FISTRAP-TUMBES", "FISTRAP-MADRE-DE-DIOS"} <= set(offices)
    assert anonymous.status_code == 401
