"""Object-level access, route by route (OWASP API1, API3, API5).

One row per operationId of openapi/openapi.json: how to build a valid request about a fresh
object, which organization is involved in that object, and what each role of that
organization, and a caseworker of an organization not involved, must get: "ok" (200, 201 or
202), 403 (the role may not), or 404 (the object does not exist for the caller). A route
without a row fails the test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.core.time import utcnow
from tests.access.world import PRINCIPALS, UNINVOLVED, Call, World, uid
from tests.planning.test_router import SMALL
from tests.support.factories import Factory, case_body, marriage_case

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

OK = "ok"
CASE_ROLES = ("identifier", "caseworker", "shelter_staff", "legal_aid")
NO_CASE_ROLES = ("analyst", "auditor", "admin")

Expect = dict[str, str | int]


def expect(ok: tuple[str, ...], *, uninvolved: str | int, others: int = 403) -> Expect:
    """`ok` roles succeed, other roles get `others`, the uninvolved caseworker `uninvolved`."""
    table: Expect = {p: (OK if p in ok else others) for p in PRINCIPALS}
    table[UNINVOLVED] = uninvolved
    return table


# A route about a case (or a record of one): case roles of an involved organization may,
# roles that see no case may not, and for anyone else the case does not exist.
ON_CASE = expect(CASE_ROLES, uninvolved=404)
# Case work that names no existing case (open one, list one's own): any case role.
CASE_WORK = expect(CASE_ROLES, uninvolved=OK)
# Anyone signed in (the facility directory, aggregates, the caller).
ANYONE = expect(tuple(PRINCIPALS), uninvolved=OK)
STATS = expect(("analyst", "admin"), uninvolved=403)
PLANNING = expect(("analyst", "admin"), uninvolved=403)
AUDIT = expect(("auditor", "admin"), uninvolved=403)
FACILITIES = expect(("admin",), uninvolved=403)
# Recording a legal basis for statistics overrides consent: caseworkers only.
OVERRIDE = expect(("caseworker",), uninvolved=404)

Build = Callable[[World, str], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    build: Build
    expected: Expect
    # The organization whose users are the principals (involved in the object built).
    org: str = "PNP"
    # Read-only: one object serves every principal.
    shared: bool = False


async def _case_call(w: World, method: str, tail: str, body: object = None) -> Call:
    case = await w.case()
    return Call(method, f"/v1/cases/{case['id']}{tail}", body)


def on_case(method: str, tail: str, body: object = None, *, shared: bool = False) -> Row:
    async def build(w: World, org: str) -> Call:
        return await _case_call(w, method, tail, body)

    return Row(build, ON_CASE, shared=shared)


def get_on_case(tail: str) -> Row:
    return on_case("GET", tail, shared=True)


def plain(call: Call, expected: Expect) -> Row:
    async def build(w: World, org: str) -> Call:
        return call

    return Row(build, expected, shared=True)


# --- builders of the routes that need more than a case --------------------------------


async def _token(w: World, org: str) -> Call:
    raise AssertionError("the token request is built per principal, with its password")


async def _correct(w: World, org: str) -> Call:
    case = await w.case()
    # `*`: whatever the case's version (concurrent edits are tests/cases' matter).
    return Call(
        "PATCH",
        f"/v1/cases/{case['id']}",
        {"current_location": "Casa refugio"},
        headers={"If-Match": "*"},
    )


async def _identification(w: World, org: str) -> Call:
    case = await w.case()
    again = case_body()
    del again["person"], again["current_location"]
    return Call("POST", f"/v1/cases/{case['id']}/identifications", again)


def _dni() -> dict[str, str]:
    return {"type": "dni", "number": f"{uuid.uuid4().int % 10**8:08d}"}


async def _link(w: World, org: str) -> Call:
    person = {"given_name": "Ana", "family_name": f"Link {uid()[:6]}", "birth_date": "2009-01-02"}
    base = {k: v for k, v in case_body()["person"].items() if k != "age_estimate"}
    first = await w.case(
        person={
            **base,
            **person,
            "document": _dni(),
        }
    )
    second = await w.case(
        person={
            **base,
            **person,
            "document": _dni(),
        }
    )
    return Call("POST", f"/v1/cases/{second['id']}/person/link", {"person_id": first["person_id"]})


async def _placement_request(w: World, org: str) -> Call:
    case = await w.shelter_case(**marriage_case())
    facility = await w.facility()
    return Call("POST", f"/v1/cases/{case['id']}/placements", {"facility_id": facility["id"]})


async def _referral_send(w: World, org: str) -> Call:
    case = await w.case()
    await w.consent_id(case["id"])
    return Call(
        "POST",
        f"/v1/cases/{case['id']}/referrals",
        {
            "to_org": "MINJUS",
            "purpose": "legal_aid",
            "consent_override_justification": "the person asked for a defender",
        },
    )


def _referral_action(action: str, *, accepted: bool = False, body: object = None) -> Build:
    async def build(w: World, org: str) -> Call:
        case = await w.case()
        referral = await w.referral_to("MIMP", case["id"])
        if accepted:
            await w.post(await w.mimp(), f"/v1/referrals/{referral}/accept")
        return Call("POST", f"/v1/referrals/{referral}/{action}", body)

    return build


async def _referral_cancel(w: World, org: str) -> Call:
    case = await w.case()
    referral = await w.referral_to("MIMP", case["id"])
    return Call("POST", f"/v1/referrals/{referral}/cancel", {"reason": "sent in error"})


async def _erase(w: World, org: str) -> Call:
    case = await w.case()
    return Call(
        "POST",
        f"/v1/persons/{case['person_id']}/erase",
        {"legal_basis": "data_subject_request", "justification": "request no. 2026-001 on file"},
    )


def _alert_action(action: str) -> Build:
    async def build(w: World, org: str) -> Call:
        return Call("POST", f"/v1/alerts/{await w.alert_id()}/{action}")

    return build


async def _custody_end(w: World, org: str) -> Call:
    held = await w.child_in_custody()
    return Call(
        "POST", f"/v1/custody-periods/{held['custody']['id']}/end", {"end": utcnow().isoformat()}
    )


async def _consent_revoke(w: World, org: str) -> Call:
    case = await w.case()
    return Call("POST", f"/v1/consents/{await w.consent_id(case['id'])}/revoke")


async def _assign(w: World, org: str) -> Call:
    case = await w.case()
    defender = await w.defender()
    return Call(
        "POST", f"/v1/cases/{case['id']}/legal-aid", {"defender_id": str(defender.actor.user_id)}
    )


async def _legal_aid_end(w: World, org: str) -> Call:
    case = await w.case()
    assignment = await w.assignment(case["id"])
    return Call("POST", f"/v1/legal-aid/{assignment}/end", {"reason": "replaced"})


async def _statistics_basis(w: World, org: str) -> Call:
    case = await w.case()
    return Call("POST", f"/v1/cases/{case['id']}/statistics-bases", {"basis": "statutory_duty"})


async def _statistics_basis_withdraw(w: World, org: str) -> Call:
    case = await w.case()
    basis = await w.statistics_basis(case["id"])
    return Call("POST", f"/v1/statistics-bases/{basis}/withdraw")


def _placement_action(action: str, body: object = None, *, hold: bool = False) -> Build:
    async def build(w: World, org: str) -> Call:
        placement = await w.placement(hold=hold)
        method = "GET" if action == "decision" else "POST"
        return Call(method, f"/v1/placements/{placement['id']}/{action}", body)

    return build


def _request_action(tail: str, body: object = None) -> Build:
    async def build(w: World, org: str) -> Call:
        request = await w.waiting_request()
        return Call(
            "POST" if body is not None else "GET", f"/v1/placement-requests/{request}{tail}", body
        )

    return build


def on_foreign_case(method: str, tail: str, body: object = None) -> Row:
    async def build(w: World, org: str) -> Call:
        case = await w.foreign_case()
        return Call(method, f"/v1/cases/{case['id']}{tail}", body)

    return Row(build, ON_CASE, shared=method == "GET")


async def _plan_return(w: World, org: str) -> Call:
    case = await w.foreign_case()
    await w.post(
        await w.police(),
        f"/v1/cases/{case['id']}/consents",
        {"purposes": ["repatriation"], "share_with": [], "language": "es"},
    )
    return Call(
        "POST",
        f"/v1/cases/{case['id']}/repatriations",
        {"direction": "to_country_of_origin", "travel_on": "2026-04-02"},
    )


def _repatriation(method: str, tail: str, body: object = None) -> Build:
    async def build(w: World, org: str) -> Call:
        return Call(method, f"/v1/repatriations/{await w.repatriation()}{tail}", body)

    return build


async def _proceedings_create(w: World, org: str) -> Call:
    prosecutor = await w.prosecutor()
    case = await w.case(prosecutor)
    return Call(
        "POST",
        "/v1/proceedings",
        {
            "complaint_number": f"CF-{uid()[:10]}",
            "prosecutor_office": "FISTRAP-LIMA",
            "complaint_filed_on": "2026-04-01",
            "cases": [{"case_id": case["id"], "offence_on": "2026-01-10"}],
        },
    )


def _proceeding(method: str, tail: str, body: object = None, *, trial: bool = False) -> Build:
    async def build(w: World, org: str) -> Call:
        made = await w.proceeding(trial=trial)
        return Call(method, f"/v1/proceedings/{made['proceeding']['id']}{tail}", body)

    return build


async def _proceeding_add_case(w: World, org: str) -> Call:
    made = await w.proceeding()
    other = await w.case(await w.prosecutor())
    return Call(
        "POST",
        f"/v1/proceedings/{made['proceeding']['id']}/cases",
        {"case_id": other["id"], "offence_on": "2026-01-10"},
    )


async def _restitution_order(w: World, org: str) -> Call:
    made = await w.proceeding(trial=True)
    return Call(
        "POST",
        f"/v1/proceedings/{made['proceeding']['id']}/restitution-orders",
        {"case_id": made["case"]["id"], "amount_soles": "500.00", "ordered_on": "2026-10-01"},
    )


async def _payment(w: World, org: str) -> Call:
    order = await w.restitution_order()
    return Call(
        "POST",
        f"/v1/restitution-orders/{order}/payments",
        {"amount_soles": "100.00", "received_on": "2026-10-15"},
    )


async def _outcome(w: World, org: str) -> Call:
    defendant = await w.defendant_at_trial()
    return Call(
        "POST",
        f"/v1/defendants/{defendant}/outcome",
        {"outcome": "acquitted", "outcome_on": "2026-10-01"},
    )


async def _read_consent(w: World, org: str) -> Call:
    case = await w.case()
    return Call("GET", f"/v1/consents/{await w.consent_id(case['id'])}")


async def _read_referral(w: World, org: str) -> Call:
    case = await w.case()
    return Call("GET", f"/v1/referrals/{await w.referral_to('MIMP', case['id'])}")


async def _read_defendant(w: World, org: str) -> Call:
    return Call("GET", f"/v1/defendants/{await w.defendant_at_trial()}")


async def _simulation(w: World, org: str, tail: str = "") -> Call:
    return Call("GET", f"/v1/simulations/{await w.simulation(org)}{tail}")


async def _chart(w: World, org: str) -> Call:
    job = await w.simulation(org, SMALL_SIMULATION)
    await w.finished_simulation(org, job)
    return Call("GET", f"/v1/simulations/{job}/charts/occupancy.png")


async def _release(w: World, org: str, tail: str = "", method: str = "GET") -> Call:
    return Call(method, f"/v1/stats/releases/{await w.release()}{tail}")


async def _change_capacity(w: World, org: str) -> Call:
    facility = await w.facility(capacity=2)
    return Call(
        "POST",
        f"/v1/facilities/{facility['id']}/capacity-changes",
        {"capacity": 3, "reason": "a room repaired"},
    )


async def _create_facility(w: World, org: str) -> Call:
    return Call(
        "POST",
        "/v1/facilities",
        {
            "code": f"T-{uid()[:8].upper()}",
            "name": "Casa de acceso",
            "operator": "MIMP",
            "region": "24",
            "kind": "ngo_shelter",
            "capacity": 1,
            # Takes only what the tests' own cases are: the seeded beds' cases stay theirs.
            "exploitation_forms": ["forced_marriage"],
            "genders": ["female"],
        },
    )


async def _read_facility(w: World, org: str) -> Call:
    facility = await w.facility()
    return Call("GET", f"/v1/facilities/{facility['id']}")


def _build(fn: Callable[..., Awaitable[Call]], **kwargs: str) -> Build:
    async def build(w: World, org: str) -> Call:
        return await fn(w, org, **kwargs)

    return build


def _routed(build: Build, expected: Expect, org: str = "PNP", shared: bool = False) -> Row:
    return Row(build, expected, org=org, shared=shared)


SMALL_SIMULATION = {"scenario": SMALL}

RECEIVER = expect(CASE_ROLES, uninvolved=404)

ROWS: dict[str, Row] = {
    # The system and the caller.
    "system-healthz": plain(Call("GET", "/healthz", auth=False), ANYONE),
    "system-readyz": plain(Call("GET", "/readyz", auth=False), ANYONE),
    # Open in the tests' environment: no RUTA_METRICS_TOKEN (tests/core/test_metrics.py).
    "system-read_metrics": plain(Call("GET", "/metrics", auth=False), ANYONE),
    "auth-issue_token": Row(_token, ANYONE),
    "auth-read_me": plain(Call("GET", "/v1/me"), ANYONE),
    # Cases.
    "cases-create_case": plain(Call("POST", "/v1/cases", case_body()), CASE_WORK),
    "cases-list_cases": plain(Call("GET", "/v1/cases"), CASE_WORK),
    "cases-read_case": get_on_case(""),
    "cases-correct_case": _routed(_correct, ON_CASE),
    "cases-add_identification": _routed(_identification, ON_CASE),
    "cases-read_person": get_on_case("/person"),
    "cases-link_person": _routed(_link, ON_CASE),
    "cases-list_transitions": get_on_case("/transitions"),
    "cases-transition_case": on_case(
        "POST", "/transitions", {"to": "closed", "reason": "lost_contact"}
    ),
    "cases-screen_case": on_case("POST", "/screenings", {"victim_status": "confirmed"}),
    "cases-list_screenings": get_on_case("/screenings"),
    # Consent.
    "consent-record_consent": on_case(
        "POST", "/consents", {"purposes": ["services"], "share_with": [], "language": "es"}
    ),
    "consent-list_consents": get_on_case("/consents"),
    "consent-read_consent": _routed(_read_consent, ON_CASE, shared=True),
    "consent-revoke_consent": _routed(_consent_revoke, ON_CASE),
    "consent-record_statistics_basis": _routed(_statistics_basis, OVERRIDE),
    "consent-list_statistics_bases": get_on_case("/statistics-bases"),
    "consent-withdraw_statistics_basis": _routed(_statistics_basis_withdraw, OVERRIDE),
    # Protection.
    "protection-record_assistance": on_case(
        "POST", "/assistance", {"kind": "psychological", "provided_on": "2026-03-15"}
    ),
    "protection-record_custody": on_case(
        "POST",
        "/custody-periods",
        {"place_kind": "police_station", "start": "2026-03-14T08:00:00+00:00"},
    ),
    "protection-list_custody": get_on_case("/custody-periods"),
    "protection-end_custody": _routed(_custody_end, ON_CASE),
    "protection-record_non_punishment": on_case(
        "POST",
        "/non-punishment-records",
        {
            "measure": "charge",
            "offence": "theft",
            "occurred_on": "2026-03-15",
            "authority": "Comisaría de Mazuko",
        },
    ),
    # Alerts.
    "alerts-list_alerts": plain(Call("GET", "/v1/alerts"), CASE_WORK),
    "alerts-acknowledge_alert": _routed(_alert_action("acknowledge"), ON_CASE),
    "alerts-resolve_alert": _routed(_alert_action("resolve"), ON_CASE),
    # Referrals: the sender cancels, the receiver (here MIMP) answers.
    "referrals-send_referral": _routed(_referral_send, expect(("caseworker",), uninvolved=404)),
    "referrals-list_referrals": plain(
        Call("GET", "/v1/referrals", params={"direction": "incoming"}), CASE_WORK
    ),
    "referrals-accept_referral": _routed(_referral_action("accept"), RECEIVER, org="MIMP"),
    "referrals-reject_referral": _routed(
        _referral_action("reject", body={"reason": "outside our mandate"}), RECEIVER, org="MIMP"
    ),
    "referrals-start_referral": _routed(
        _referral_action("start", accepted=True), RECEIVER, org="MIMP"
    ),
    "referrals-complete_referral": _routed(
        _referral_action("complete", accepted=True), RECEIVER, org="MIMP"
    ),
    "referrals-cancel_referral": _routed(_referral_cancel, ON_CASE),
    "referrals-read_referral": _routed(_read_referral, ON_CASE, shared=True),
    # Capacity.
    "capacity-list_facilities": plain(Call("GET", "/v1/facilities"), ANYONE),
    "capacity-create_facility": _routed(_create_facility, FACILITIES),
    "capacity-read_facility": _routed(_read_facility, ANYONE, shared=True),
    "capacity-change_capacity": _routed(_change_capacity, FACILITIES),
    "capacity-capacity_summary": plain(Call("GET", "/v1/capacity/summary"), ANYONE),
    "capacity-hsds_directory": plain(Call("GET", "/v1/directory/hsds"), ANYONE),
    # MIMP accepted the shelter referral: its case roles place; the police would get 403.
    "capacity-request_placement": _routed(_placement_request, ON_CASE, org="MIMP"),
    "capacity-list_case_placements": get_on_case("/placements"),
    "capacity-list_case_placement_requests": get_on_case("/placement-requests"),
    "capacity-read_placement_request": _routed(_request_action(""), ON_CASE, shared=True),
    "capacity-change_request_risk": _routed(
        _request_action("/risk", {"risk_level": 3, "reason": "threats"}), ON_CASE
    ),
    "capacity-withdraw_placement_request": _routed(
        _request_action("/withdraw", {"reason": "no_longer_needed"}), ON_CASE
    ),
    # Admitting and discharging, like placing: the organization that accepted the shelter
    # referral (or operates the facility); tests/access/test_placement_rule.py refuses police.
    "capacity-end_placement": _routed(
        _placement_action("end", {"reason": "discharged"}), ON_CASE, org="MIMP"
    ),
    "capacity-confirm_arrival": _routed(
        _placement_action("arrive", {}, hold=True), ON_CASE, org="MIMP"
    ),
    "capacity-read_decision": _routed(_placement_action("decision"), ON_CASE, shared=True),
    # Legal aid, interviews, proceedings.
    "legal-assign_defender": _routed(_assign, ON_CASE),
    "legal-list_legal_aid": get_on_case("/legal-aid"),
    "legal-end_legal_aid": _routed(_legal_aid_end, ON_CASE),
    "legal-record_interview": on_case(
        "POST",
        "/interviews",
        {
            "conducted_at": "2026-03-15T10:00:00+00:00",
            "purpose": "complaint",
            "gesell_chamber": True,
        },
    ),
    "legal-list_interviews": get_on_case("/interviews"),
    "legal-list_case_proceedings": get_on_case("/proceedings"),
    "legal-list_case_restitution": get_on_case("/restitution"),
    "legal-list_prosecutor_offices": plain(Call("GET", "/v1/prosecutor-offices"), ANYONE),
    # Only a prosecutor organization opens a proceeding: another organization is refused
    # (403) before any case it names is looked at, so nothing is disclosed.
    "legal-create_proceeding": _routed(
        _proceedings_create, expect(CASE_ROLES, uninvolved=403), org="MP"
    ),
    "legal-list_proceedings": plain(Call("GET", "/v1/proceedings"), CASE_WORK),
    "legal-get_proceeding": _routed(_proceeding("GET", ""), ON_CASE, org="MP", shared=True),
    "legal-add_proceeding_case": _routed(_proceeding_add_case, ON_CASE, org="MP"),
    "legal-add_defendant": _routed(
        _proceeding("POST", "/defendants", {"charge_filed": "trafficking"}), ON_CASE, org="MP"
    ),
    "legal-change_proceeding_status": _routed(
        _proceeding("POST", "/status", {"status": "investigation", "effective_on": "2026-04-10"}),
        ON_CASE,
        org="MP",
    ),
    "legal-order_restitution": _routed(_restitution_order, ON_CASE, org="PJ"),
    "legal-record_restitution_payment": _routed(_payment, ON_CASE, org="PJ"),
    "legal-record_outcome": _routed(_outcome, ON_CASE, org="PJ"),
    "legal-read_defendant": _routed(_read_defendant, ON_CASE, org="MP", shared=True),
    # Foreign nationals and repatriation.
    "repatriation-record_asylum_claim": on_foreign_case(
        "POST", "/asylum-claim", {"status": "pending", "effective_on": "2026-03-20"}
    ),
    "repatriation-get_asylum_claim": on_foreign_case("GET", "/asylum-claim"),
    "repatriation-record_residency": on_foreign_case(
        "POST", "/residency", {"status": "temporary", "effective_on": "2026-03-20"}
    ),
    "repatriation-get_residency": on_foreign_case("GET", "/residency"),
    "repatriation-plan_repatriation": _routed(_plan_return, ON_CASE),
    "repatriation-list_repatriations": get_on_case("/repatriations"),
    "repatriation-get_repatriation": _routed(
        _repatriation("GET", ""), ON_CASE, org="RREE", shared=True
    ),
    "repatriation-record_arrival": _routed(
        _repatriation("POST", "/arrival", {"arrived_on": "2026-04-03"}), ON_CASE, org="RREE"
    ),
    "repatriation-cancel_repatriation": _routed(
        _repatriation("POST", "/cancel", {"reason": "person_declined"}), ON_CASE, org="RREE"
    ),
    # Statistics, planning, audit.
    "stats-list_tables": plain(Call("GET", "/v1/stats/tables"), STATS),
    "stats-read_table": plain(Call("GET", "/v1/stats/tables/V1", params={"year": 2016}), STATS),
    "stats-create_release": plain(
        Call("POST", "/v1/stats/releases", {"year": 2016, "tables": [{"code": "V1"}]}), STATS
    ),
    "stats-list_releases": plain(Call("GET", "/v1/stats/releases"), STATS),
    "stats-read_release": _routed(_build(_release), STATS, shared=True),
    "stats-verify_release": _routed(_build(_release, tail="/verify", method="POST"), STATS),
    "simulations-request_simulation": plain(
        Call("POST", "/v1/simulations", {"reference": "peru-2016", "replications": 2, "seed": 5}),
        PLANNING,
    ),
    "simulations-list_simulations": plain(Call("GET", "/v1/simulations"), PLANNING),
    "simulations-read_simulation": _routed(_build(_simulation), PLANNING, shared=True),
    "simulations-read_chart": _routed(_chart, PLANNING, shared=True),
    "audit-list_audit_events": plain(Call("GET", "/v1/audit/events"), AUDIT),
    # Erasure: administrators only; a fresh person for each principal.
    "persons-erase_person": Row(_erase, expect(("admin",), uninvolved=403)),
}


def _category(status: int) -> str | int:
    return OK if status in (200, 201, 202) else status


@pytest.fixture(scope="module")
def world(client: httpx.AsyncClient, factory: Factory) -> World:
    return World(client, factory)


def test_every_route_in_the_contract_has_a_row() -> None:
    spec = json.loads(SPEC.read_text())
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}

    assert sorted(operations - set(ROWS)) == [], "routes without a row in the access table"
    assert sorted(set(ROWS) - operations) == [], "rows for routes the contract no longer has"


async def _send(world: World, call: Call, who: str, org: str) -> httpx.Response:
    user = await world.principal(org, who)
    headers = user.headers if call.auth else {}
    return await world.client.request(
        call.method,
        call.path,
        json=call.json,
        params=call.params,
        data=call.form,
        headers={**headers, **(call.headers or {})},
    )


@pytest.mark.parametrize("operation", sorted(ROWS))
async def test_each_role_gets_what_the_table_says(world: World, operation: str) -> None:
    row = ROWS[operation]
    shared = await row.build(world, row.org) if row.shared else None
    got: dict[str, str | int] = {}
    for who in PRINCIPALS:
        if operation == "auth-issue_token":
            user = await world.principal(row.org, who)
            call = Call(
                "POST",
                "/v1/auth/token",
                form={"username": user.actor.username, "password": user.password},
                auth=False,
            )
        else:
            call = shared or await row.build(world, row.org)
        response = await _send(world, call, who, row.org)
        await world.settled(call, response, row.org)
        got[who] = _category(response.status_code)
        if response.status_code == 404:
            # A 404 that hides existence says the same as for an id that was never issued.
            assert response.json()["code"].endswith("not_found"), response.text

    assert got == row.expected, {
        w: (got[w], row.expected[w]) for w in got if got[w] != row.expected[w]
    }
