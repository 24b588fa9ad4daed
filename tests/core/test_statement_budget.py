"""A statement budget per route: the round trips each request costs, counted, never timed.

Each route of the contract is called once, as in the access table (tests/access/
test_route_table.py builds the request about a fresh object), by a role that may call it;
the SQL statements the request sends are counted (tests/support/statements.py says what
counts: every statement through a cursor, not BEGIN/COMMIT) and must stay within the
route's budget. A route without a budget fails, like a route without an access row.

The budgets include the caller's principal (one statement: the user joined to their
organization, checked active; the test settings turn the worker's principal cache off, so
that it is read at every request). The counts do not depend on the
machine, only on the code and the database's dialect: a budget is the larger count of the
two databases. The numbers say where the round trips are; lowering a budget after real work
is the point, raising one needs a reason in the commit.
"""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from service.core.db import Database, table_of
from service.identity.models import AppUser
from service.identity.rules import Role
from tests.access.test_route_table import OK, ROWS
from tests.access.world import PRINCIPALS, Call, World
from tests.support.databases import ON_POSTGRES
from tests.support.factories import Factory, case_body, person_body
from tests.support.statements import counting_statements

# operationId -> the most statements one call may send, the principal's included.
BUDGETS: dict[str, int] = {
    "alerts-acknowledge_alert": 5,
    "alerts-list_alerts": 2,
    "alerts-resolve_alert": 5,
    "audit-list_audit_events": 2,
    # Two transactions (the attempt claimed, then its outcome), around the password check.
    "auth-issue_token": 15,
    # The principal alone, uncached: 2 before issue 12 (the organization read again).
    "auth-read_me": 1,
    "capacity-capacity_summary": 5,
    "capacity-change_capacity": 10,
    "capacity-change_request_risk": 10,
    "capacity-confirm_arrival": 13,
    "capacity-create_facility": 11,
    "capacity-end_placement": 14,
    "capacity-hsds_directory": 3,
    "capacity-list_case_placement_requests": 3,
    "capacity-list_case_placements": 3,
    "capacity-list_facilities": 6,
    "capacity-read_decision": 4,
    "capacity-read_facility": 5,
    "capacity-read_placement_request": 4,
    "capacity-request_placement": 24,
    "capacity-withdraw_placement_request": 6,
    "cases-add_identification": 13,  # 23 before issue 12
    # A new location (as the access table's call): the principal, the case, its lock, the
    # person's wrapped key (read once, to open the old text and compare, then seal the new:
    # 8 before the location was sealed), the UPDATE, the view, the audit chain's three.
    "cases-correct_case": 8,
    # An identification with a person (names, a document): 30 before issue 12, 15 now once
    # the process has seen the region (16 the first time): the principal, the document's
    # claimant, one INSERT per table written (person, key, document claim, identity, blind
    # index, case, identification, involvement, exploitation), the view, the audit chain's
    # three.
    "cases-create_case": 15,
    # 15 before the location was sealed: the view after the link opens a location sealed
    # for the record just linked away, whose key the view does not read (the records linked
    # into hers, that record's key: 2).
    "cases-link_person": 16,
    "cases-list_cases": 3,
    "cases-list_screenings": 3,
    "cases-list_transitions": 3,
    # The principal, then the view with the access rule as its condition: 10 before issue
    # 12, 3 after its first pass.
    "cases-read_case": 2,
    # The audited read: the principal; the records with their keys, the access rule and
    # whether the caller identified the person within; the audit chain's two (its event
    # alone here: under load the appender's transaction carries many requests' events). 9
    # before issue 12, 7 with the case and the identification asked apart.
    "cases-read_person": 4,
    "cases-screen_case": 7,
    "cases-transition_case": 11,
    "consent-list_consents": 3,
    "consent-list_statistics_bases": 3,
    "consent-read_consent": 3,
    "consent-record_consent": 6,
    "consent-record_statistics_basis": 7,
    "consent-revoke_consent": 9,
    "consent-withdraw_statistics_basis": 7,
    "legal-add_defendant": 7,
    "legal-add_proceeding_case": 16,
    "legal-assign_defender": 13,
    "legal-change_proceeding_status": 13,
    "legal-create_proceeding": 22,
    "legal-end_legal_aid": 9,
    "legal-get_proceeding": 7,
    "legal-list_case_proceedings": 3,
    "legal-list_case_restitution": 3,
    "legal-list_interviews": 3,
    "legal-list_legal_aid": 3,
    "legal-list_proceedings": 2,
    "legal-list_prosecutor_offices": 2,
    "legal-order_restitution": 9,
    "legal-read_defendant": 3,
    "legal-record_interview": 8,
    "legal-record_outcome": 9,
    "legal-record_restitution_payment": 10,
    "protection-end_custody": 10,
    "protection-list_custody": 3,
    "protection-record_assistance": 7,
    "protection-record_custody": 9,
    "protection-record_non_punishment": 7,
    "referrals-accept_referral": 15,
    "referrals-cancel_referral": 14,
    "referrals-complete_referral": 8,
    "referrals-list_referrals": 2,
    "referrals-read_referral": 3,
    "referrals-reject_referral": 13,
    "referrals-send_referral": 14,
    "referrals-start_referral": 8,
    "repatriation-cancel_repatriation": 11,
    "repatriation-get_asylum_claim": 3,
    "repatriation-get_repatriation": 4,
    "repatriation-get_residency": 3,
    "repatriation-list_repatriations": 3,
    "repatriation-plan_repatriation": 13,
    "repatriation-record_arrival": 9,
    "repatriation-record_asylum_claim": 11,
    "persons-erase_person": 16,
    "repatriation-record_residency": 8,
    "simulations-list_simulations": 2,
    "simulations-read_chart": 3,
    "simulations-read_simulation": 3,
    # The queue is counted under an advisory lock on PostgreSQL (one statement more there).
    "simulations-request_simulation": 6,
    "stats-create_release": 11,
    "stats-list_releases": 2,
    "stats-list_tables": 1,
    "stats-read_release": 4,
    "stats-read_table": 10,
    "stats-verify_release": 11,
    "system-healthz": 0,
    "system-read_metrics": 4,
    "system-readyz": 2,
}

# Lower on PostgreSQL, which takes rows of several tables in one INSERT statement
# (core.db.insert_rows: data-modifying WITH); SQLite runs one statement per table.
POSTGRES_BUDGETS: dict[str, int] = {
    # The identification's rows, its forms and the involvement in one statement.
    "cases-add_identification": 10,
    # A new person: the principal, the document's claimant, the person with her key and her
    # claim, then her identity, blind index, case, identification, forms and involvement, the
    # view, the audit chain's two: 7. A document already known (the suite's data may hold
    # it): her record, her data key and her first identification are read instead: 10.
    "cases-create_case": 10,
}


# The routes bench/http_overhead.py measures: none of their statements is rendered again at
# every execution (SQLAlchemy's "post-compile" parameters: a list given to `in_`, a value
# it must write into the SQL text), nor compiled again (a statement without a cache key:
# a VALUES clause of several rows). Each would cost the worker CPU at every request.
RENDERED_ONCE = {"cases-read_case", "cases-read_person", "cases-create_case"}


@pytest.fixture(scope="module")
def world(client: httpx.AsyncClient, factory: Factory) -> World:
    return World(client, factory)


def test_every_route_has_a_budget() -> None:
    assert sorted(set(ROWS) - set(BUDGETS)) == [], "routes without a statement budget"
    assert sorted(set(BUDGETS) - set(ROWS)) == [], "budgets of routes that no longer exist"
    assert sorted(RENDERED_ONCE - set(ROWS)) == [], "RENDERED_ONCE names no route"
    lower = {op: n for op, n in POSTGRES_BUDGETS.items() if n < BUDGETS[op]}
    assert lower == POSTGRES_BUDGETS, "a PostgreSQL budget must be below the budget"


@pytest.mark.parametrize("operation", sorted(ROWS))
async def test_route_stays_within_its_statement_budget(
    world: World, db: Database, operation: str
) -> None:
    row = ROWS[operation]
    who = next(p for p in PRINCIPALS if row.expected[p] == OK)
    user = await world.principal(row.org, who)
    if operation == "auth-issue_token":
        call = Call(
            "POST",
            "/v1/auth/token",
            form={"username": user.actor.username, "password": user.password},
            auth=False,
        )
    else:
        call = await row.build(world, row.org)
    with counting_statements(db) as counted:
        response = await world.client.request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            data=call.form,
            headers={**(user.headers if call.auth else {}), **(call.headers or {})},
        )
    assert response.status_code in (200, 201, 202), response.text
    await world.settled(call, response, row.org)
    budget = BUDGETS[operation]
    if ON_POSTGRES:
        budget = POSTGRES_BUDGETS.get(operation, budget)
    assert len(counted) <= budget, (
        f"{operation}: {len(counted)} statements > budget {budget}",
        counted.statements,
    )
    if operation in RENDERED_ONCE:
        assert counted.rendered_each_time == [], counted.rendered_each_time
        assert counted.compiled_each_time == [], counted.compiled_each_time


async def test_the_principal_is_one_uncached_statement_and_a_disabled_user_is_refused_at_once(
    factory: Factory, client: httpx.AsyncClient, db: Database
) -> None:
    user = await factory.user("PNP", Role.caseworker)
    with counting_statements(db) as counted:
        response = await client.get("/v1/me", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["organization"]["code"] == "PNP"
    assert len(counted) == 1, counted.statements
    # Read outside the request's session (`Database.fetch`): the driver sends it (asyncpg, or
    # sqlite3 in its thread) with no transaction at all.
    assert counted.transactions == 0

    # No cache between the user row and the request: the next request after the change is
    # refused, with the same one statement.
    async with db.session() as session:
        await session.exec(
            sa.update(table_of(AppUser))
            .where(table_of(AppUser).c.id == user.actor.user_id)
            .values(is_active=False)
        )
    with counting_statements(db) as counted:
        refused = await client.get("/v1/me", headers=user.headers)
    assert refused.status_code == 401, refused.text
    assert len(counted) == 1, counted.statements


def test_a_checkout_costs_no_round_trip(db: Database) -> None:
    # A pre-ping would be a statement at every checkout that no hook counts.
    assert not db.engine.pool._pre_ping


async def test_a_case_read_is_two_statements_whatever_the_case_holds(
    world: World, db: Database
) -> None:
    police = await world.police()
    case = await world.case()
    route = {"origin": "VEN", "transit": ["COL", "ECU"], "destination": "PER"}
    again = {
        **case_body(route=route),
        "exploitation": [{"form": "forced_labour", "sector": "gold_mining"}],
    }
    del again["person"], again["current_location"]
    await world.post(police, f"/v1/cases/{case['id']}/identifications", again)
    suggested = {(s["to_org"], s["purpose"]) for s in case["suggested_referrals"]}
    made = next(iter(sorted(suggested)))
    await world.referral_to(made[0], case["id"], purpose=made[1])

    with counting_statements(db) as counted:
        response = await world.client.get(f"/v1/cases/{case['id']}", headers=police.headers)

    assert response.status_code == 200, response.text
    assert len(counted) == 2, counted.statements  # the principal; the view, access rule within
    # Both come from SQLAlchemy's compiled cache as they are: nothing rendered per request.
    assert counted.rendered_each_time == [], counted.rendered_each_time
    view = response.json()
    assert [i["route"] for i in view["identifications"]] == [None, route]
    assert view["identifications"][1]["exploitation"] == [
        {"form": "forced_labour", "sector": "gold_mining"}
    ]
    assert {(s["to_org"], s["purpose"]) for s in view["suggested_referrals"]} == suggested - {made}
    assert view["involved_organizations"] == ["PNP"]
    # Where she is now, sealed: opened with her data key, read in the view's statement.
    assert view["current_location"] == case_body()["current_location"]


async def test_a_case_read_without_a_location_is_two_statements_too(
    world: World, db: Database
) -> None:
    police = await world.police()
    case = await world.case(current_location=None)

    with counting_statements(db) as counted:
        response = await world.client.get(f"/v1/cases/{case['id']}", headers=police.headers)

    assert response.status_code == 200, response.text
    assert len(counted) == 2, counted.statements
    assert response.json()["current_location"] is None


async def test_a_location_sealed_for_a_record_since_linked_costs_two_more_statements(
    world: World, db: Database
) -> None:
    police = await world.police()
    who = {"given_name": "Luz", "family_name": "Tupa", "birth_date": "2008-09-30"}
    first = await world.case(person=person_body(**who, age_estimate=None))
    second = await world.case(
        person=person_body(**who, age_estimate=None), current_location="Casa de su tía"
    )
    read = await world.client.get(f"/v1/cases/{second['id']}", headers=police.headers)
    linked = await world.client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers={**police.headers, "If-Match": read.headers["ETag"]},
    )
    assert linked.status_code == 200, linked.text

    with counting_statements(db) as counted:
        response = await world.client.get(f"/v1/cases/{second['id']}", headers=police.headers)

    assert response.status_code == 200, response.text
    assert response.json()["current_location"] == "Casa de su tía"
    # The principal and the view, as for any case; then, because the key the view read (the
    # surviving record's) does not open a text sealed for the record linked into it, the
    # records linked into hers and that record's key: 4. Only a case whose person was linked
    # after its location was written pays this (a correction seals it anew, for her).
    assert len(counted) == 4, counted.statements
