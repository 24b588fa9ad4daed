"""`ruta facility`: the directory administered from the command line, through the same
capacity service (never overbooked, dated, audited) as the API.

The facilities here take only women of 77 (no other test's person): beds they leave open
change no other test's placement, nor the reason of its unmet need."""

from __future__ import annotations

import json
import uuid

import httpx

from service.core.db import Database
from service.core.settings import Settings
from service.identity.rules import Role
from tests.support.cli import ruta
from tests.support.databases import query
from tests.support.factories import (
    Factory,
    create_facility,
    create_shelter_case,
    marriage_case,
    request_placement,
)


def _listed(settings: Settings, code: str) -> dict[str, object]:
    listed = ruta(settings, "facility", "list", "--region", "24", "--json")
    assert listed.returncode == 0, listed.stderr
    [facility] = [f for f in json.loads(listed.stdout) if f["code"] == code]
    found: dict[str, object] = facility
    return found


async def test_facility_add_opens_it_in_the_directory_and_audits_the_administrator(
    settings: Settings, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    reader = await factory.user("PNP", Role.identifier)
    code = f"T-CLI-{uuid.uuid4().hex[:8].upper()}"

    added = ruta(
        settings,
        "facility",
        "add",
        code,
        "--as",
        admin.actor.username,
        "--name",
        "Casa de acogida de prueba",
        "--operator",
        "MIMP",
        "--region",
        "24",
        "--kind",
        "ngo_shelter",
        "--capacity",
        "4",
        "--form",
        "forced_marriage",
        "--gender",
        "female",
        "--min-age",
        "77",
        "--max-age",
        "77",
        "--address",
        "Jr. Reservado 9",
    )
    directory = await client.get("/v1/facilities", params={"region": "24"}, headers=reader.headers)
    not_admin = ruta(
        settings,
        "facility",
        "add",
        f"{code}-2",
        "--as",
        reader.actor.username,
        "--name",
        "Otra",
        "--operator",
        "MIMP",
        "--region",
        "24",
        "--kind",
        "ngo_shelter",
        "--capacity",
        "1",
    )
    bad_region = ruta(
        settings,
        "facility",
        "add",
        code,
        "--as",
        admin.actor.username,
        "--name",
        "Repetida",
        "--operator",
        "MIMP",
        "--region",
        "99",
        "--kind",
        "ngo_shelter",
        "--capacity",
        "1",
    )

    assert added.returncode == 0, added.stderr
    assert f"added {code}: open, capacity 4, 0 occupied, 0 held, 4 available" in added.stdout
    [shown] = [f for f in directory.json() if f["code"] == code]
    assert (shown["capacity"], shown["genders"], shown["exploitation_forms"]) == (
        4,
        ["female"],
        ["forced_marriage"],
    )
    assert not_admin.returncode == 2
    assert "may not manage facilities" in not_admin.stderr
    assert bad_region.returncode == 2
    assert "region: not an INEI ubigeo department code" in bad_region.stderr
    [(actor,)] = await query(
        db,
        "SELECT actor_user_id FROM audit_event WHERE action = 'facility.created'"
        " AND entity_id = :id",
        id=shown["id"],
    )
    assert str(actor).replace("-", "") == admin.actor.user_id.hex


async def test_set_capacity_close_and_reopen_keep_the_never_overbook_rule(
    settings: Settings, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    mimp = await factory.user("MIMP", Role.caseworker)
    facility = await create_facility(
        client, admin, capacity=2, genders=["female"], min_age=77, max_age=77
    )
    code = facility["code"]
    case = await create_shelter_case(client, police, mimp, **marriage_case(age_estimate=77))
    placed = await request_placement(client, mimp, case["id"], facility_id=facility["id"])
    assert placed.status_code == 201, placed.text
    as_admin = ("--as", admin.actor.username)

    below = ruta(settings, "facility", "set-capacity", code, "0", *as_admin, "--reason", "cut")
    raised = ruta(settings, "facility", "set-capacity", code, "3", *as_admin, "--reason", "grant")
    listed = _listed(settings, code)
    closed = ruta(
        settings, "facility", "close", code, *as_admin, "--reason", "repairs", "--temporarily"
    )
    while_closed = _listed(settings, code)
    reopened = ruta(settings, "facility", "reopen", code, *as_admin, "--reason", "repaired")
    unknown = ruta(settings, "facility", "close", "NO-SUCH-PLACE", *as_admin, "--reason", "x")

    assert below.returncode == 2
    assert "1 beds are in use" in below.stderr
    assert raised.returncode == 0, raised.stderr
    assert "capacity 3, 1 occupied, 0 held, 2 available" in raised.stdout
    assert (listed["capacity"], listed["occupied"], listed["available"]) == (3, 1, 2)
    assert listed["address"] is None
    assert closed.returncode == 0, closed.stderr
    assert "1 persons placed" in closed.stderr
    assert (while_closed["status"], while_closed["available"]) == ("temporarily_closed", 0)
    assert reopened.returncode == 0, reopened.stderr
    assert f"reopened {code}: open, capacity 3, 1 occupied, 0 held, 2 available" in reopened.stdout
    assert unknown.returncode == 2
    assert "no facility has the code 'NO-SUCH-PLACE'" in unknown.stderr
    history = await query(
        db,
        "SELECT c.capacity, c.status, c.reason FROM facility_capacity_change c"
        " JOIN facility f ON f.id = c.facility_id WHERE f.code = :code ORDER BY c.effective_at",
        code=code,
    )
    assert [tuple(h) for h in history][1:] == [
        (3, "open", "grant"),
        (3, "temporarily_closed", "repairs"),
        (3, "open", "repaired"),
    ]
    events = await query(
        db,
        "SELECT action, actor_user_id FROM audit_event WHERE entity_id = :id"
        " AND action = 'facility.capacity_changed'",
        id=facility["id"],
    )
    assert len(events) == 3
    assert {str(a).replace("-", "") for _, a in events} == {admin.actor.user_id.hex}
