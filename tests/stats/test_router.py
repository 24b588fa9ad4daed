"""The statistics through HTTP: who may read them, what a published table looks like, that no
hidden count can be recovered from a release (the interval audit), and that a release is
reproduced as known on its day."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.identity.rules import Role
from service.stats.audit import narrow_cells
from service.stats.disclosure import ProtectedTable, PublishedCell
from service.stats.rules import TOTAL, Dimension, TableSpec
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, create_case, patch_case, person_body

YEAR = 2003
ROUTES = [
    ("GET", "/v1/stats/tables", None),
    ("GET", "/v1/stats/tables/V1?year=2003", None),
    ("POST", "/v1/stats/releases", {"year": 2003}),
    ("GET", "/v1/stats/releases", None),
    ("GET", f"/v1/stats/releases/{uuid.uuid4()}", None),
    ("POST", f"/v1/stats/releases/{uuid.uuid4()}/verify", None),
]


async def _identify(
    client: httpx.AsyncClient, user: SignedInUser, n: int, **fields: Any
) -> list[dict[str, Any]]:
    """n persons identified in YEAR who consent to statistics."""
    person = fields.pop("person", {})
    cases = []
    for i in range(n):
        case = await create_case(
            client,
            user,
            identified_on=date(YEAR, 1 + i % 12, 5).isoformat(),
            person=person_body(**person),
            **fields,
        )
        consent = await client.post(
            f"/v1/cases/{case['id']}/consents",
            json={"purposes": ["statistics"], "language": "es"},
            headers=user.headers,
        )
        assert consent.status_code == 201, consent.text
        cases.append(case)
    return cases


@pytest.fixture(scope="module")
async def identified(client: httpx.AsyncClient, factory: Factory) -> list[dict[str, Any]]:
    """YEAR's persons: many girls in Madre de Dios, a few women in Lima, one man in Loreto."""
    police = await factory.user("PNP", Role.identifier)
    girls = await _identify(client, police, 23, region="17")
    women = await _identify(client, police, 4, region="15", person={"age_estimate": 25})
    man = await _identify(
        client,
        police,
        1,
        region="16",
        exploitation=[{"form": "forced_labour", "sector": "logging"}],
        person={"age_estimate": 40, "gender": "male"},
    )
    return girls + women + man


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_an_identifier_gets_403_on_every_statistics_route(
    client: httpx.AsyncClient, factory: Factory, method: str, path: str, body: Any
) -> None:
    police = await factory.user("PNP", Role.identifier)

    response = await client.request(method, path, json=body, headers=police.headers)

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"


async def test_analysts_read_tables_and_never_a_case_or_a_person(
    client: httpx.AsyncClient, factory: Factory, identified: list[dict[str, Any]]
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)
    case_id = identified[0]["id"]

    catalogue = await client.get("/v1/stats/tables", headers=analyst.headers)
    table = await client.get(f"/v1/stats/tables/V4?year={YEAR}", headers=analyst.headers)
    cases = await client.get("/v1/cases", headers=analyst.headers)
    case = await client.get(f"/v1/cases/{case_id}", headers=analyst.headers)
    person = await client.get(f"/v1/cases/{case_id}/person", headers=analyst.headers)

    assert catalogue.status_code == 200
    assert {"V1", "V4", "V5", "R1", "P2"} <= {t["code"] for t in catalogue.json()}
    assert table.status_code == 200, table.text
    assert [cases.status_code, case.status_code, person.status_code] == [403, 403, 403]
    text = table.text
    for c in identified:
        assert c["id"] not in text
        assert c["person_id"] not in text


async def test_a_published_table_hides_small_counts_and_what_would_reveal_them(
    client: httpx.AsyncClient, factory: Factory, db: Database, identified: list[dict[str, Any]]
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)

    response = await client.get(
        f"/v1/stats/tables/V4?year={YEAR}&by=region", headers=analyst.headers
    )

    assert response.status_code == 200, response.text
    table = response.json()
    assert [d["name"] for d in table["dimensions"]] == ["region", "minor", "gender"]
    cells = {tuple(c["coordinates"].values()): c for c in table["cells"]}
    assert cells[("17", "minor", "female")] == {
        "coordinates": {"region": "17", "minor": "minor", "gender": "female"},
        "value": 23,
        "rate_per_100k": None,
    }
    # Lima's 4 women and Loreto's man are hidden; so is enough else to protect them.
    assert cells[("15", "adult", "female")] == {
        "coordinates": {"region": "15", "minor": "adult", "gender": "female"},
        "suppressed": True,
    }
    assert cells[("16", "adult", "male")]["suppressed"] is True
    assert cells[("01", "minor", "female")]["value"] == 0  # zero is shown
    assert all(c.get("suppressed") or c["value"] == 0 or c["value"] >= 11 for c in table["cells"])
    # One man among 28: his sex's total (1) is hidden, so the female total or the grand
    # total must be too, or 28 - 27 gives him away. The total says what its cell says.
    grand = cells[("total", "total", "total")]
    assert table["total"] == ({"suppressed": True} if grand.get("suppressed") else {"value": 28})
    assert cells[("total", "total", "male")]["suppressed"] is True
    assert grand.get("suppressed") or cells[("total", "total", "female")].get("suppressed")
    assert table["excluded"] == {"no_consent_or_basis": 0, "not_a_victim": 0}
    assert table["disclosure"]["k"] == 11
    rows = await query(
        db,
        "SELECT entity_id, changes FROM audit_event WHERE action = 'stats.table_published'"
        " AND request_id = :request_id",
        request_id=response.headers["x-request-id"],
    )
    [(entity, changes)] = rows
    changes = changes if isinstance(changes, dict) else json.loads(changes)
    assert entity == "V4"
    assert changes["by"] == {"to": ["region", "minor", "gender"]}


async def test_csv_has_a_row_per_cell(
    client: httpx.AsyncClient, factory: Factory, identified: list[dict[str, Any]]
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)
    path = f"/v1/stats/tables/R1?year={YEAR}"

    response = await client.get(path, headers={**analyst.headers, "Accept": "text/csv"})
    as_json = (await client.get(path, headers=analyst.headers)).json()

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["region"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert len(rows) == 25 + 2  # the regions, abroad, and the total
    for cell in as_json["cells"]:
        row = rows[cell["coordinates"]["region"]]
        if cell.get("suppressed"):
            assert (row["value"], row["suppressed"], row["rate_per_100k"]) == ("", "true", "")
        else:
            assert (int(row["value"]), row["suppressed"]) == (cell["value"], "false")
            assert row["rate_per_100k"] == (
                "" if cell["rate_per_100k"] is None else str(cell["rate_per_100k"])
            )
    # Lima's four women are hidden, and so is what would give them away.
    assert rows["15"]["suppressed"] == "true"
    assert rows["01"]["value"] == "0"
    assert float(rows["01"]["rate_per_100k"]) == 0.0
    assert rows["abroad"]["rate_per_100k"] == ""  # no population abroad


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("year=2003&by=region,form,gender", "by"),
        ("year=2003&by=colour", "by"),
        ("year=2003&by=institution", "by"),  # not a dimension of V4
        ("start=2003-01-01", "year"),
        ("year=2003&start=2003-01-01&end=2003-02-01", "year"),
    ],
)
async def test_a_bad_request_names_the_field(
    client: httpx.AsyncClient, factory: Factory, query: str, field: str
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)

    response = await client.get(f"/v1/stats/tables/V4?{query}", headers=analyst.headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_an_unknown_table_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    analyst = await factory.user("MIMP", Role.analyst)

    response = await client.get("/v1/stats/tables/V99?year=2003", headers=analyst.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "stats_table_not_found"


def _protected(table: dict[str, Any]) -> ProtectedTable:
    """A published table as the audit reads it: the shape and every number shown."""
    dims = tuple(Dimension(d["name"], tuple(d["categories"])) for d in table["dimensions"])
    spec = TableSpec(
        name=table["code"],
        measure=table["measure"],
        dimensions=dims,
        about_persons={"minor", "gender"} <= {d.name for d in dims},
    )
    cells = {
        tuple(c["coordinates"][d.name] for d in dims): PublishedCell(c.get("value"))
        for c in table["cells"]
    }
    return ProtectedTable(spec=spec, cells=cells, primary=frozenset())


async def test_no_hidden_count_of_a_release_can_be_narrowed_below_eleven(
    client: httpx.AsyncClient, factory: Factory, identified: list[dict[str, Any]]
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)
    tables = [
        {"code": "V1", "by": ["region"]},
        {"code": "V4", "by": ["region"]},
        {"code": "R1"},
        {"code": "V2", "by": ["form"]},
        {"code": "V10"},
    ]

    response = await client.post(
        "/v1/stats/releases", json={"year": YEAR, "tables": tables}, headers=analyst.headers
    )

    assert response.status_code == 201, response.text
    published = response.json()["tables"]
    assert any(c.get("suppressed") for t in published for c in t["cells"])
    assert narrow_cells([_protected(t) for t in published]) == []
    # The shared margins agree: the region totals of V4 and R1 are hidden or shown alike.
    v4 = {
        c["coordinates"]["region"]: c
        for c in published[1]["cells"]
        if c["coordinates"]["minor"] == TOTAL and c["coordinates"]["gender"] == TOTAL
    }
    r1 = {c["coordinates"]["region"]: c for c in published[2]["cells"]}
    assert {k: v.get("value") for k, v in v4.items()} == {k: v.get("value") for k, v in r1.items()}


async def test_a_release_is_reproduced_as_known_on_its_day(
    client: httpx.AsyncClient, factory: Factory, identified: list[dict[str, Any]]
) -> None:
    analyst = await factory.user("MIMP", Role.analyst)
    police = await factory.user("PNP", Role.identifier)
    created = await client.post(
        "/v1/stats/releases",
        json={"year": YEAR, "tables": [{"code": "V2", "by": ["form"]}, {"code": "V4"}]},
        headers=analyst.headers,
    )
    assert created.status_code == 201, created.text
    release = created.json()

    # Later: one girl's exploitation is corrected, and eleven more are entered late.
    corrected = await patch_case(
        client,
        police,
        identified[0]["id"],
        {"exploitation": [{"form": "forced_labour", "sector": "gold_mining"}]},
    )
    await _identify(client, police, 11, region="17")
    verified = await client.post(
        f"/v1/stats/releases/{release['id']}/verify", headers=analyst.headers
    )
    stored = await client.get(f"/v1/stats/releases/{release['id']}", headers=analyst.headers)
    today = await client.post(
        "/v1/stats/releases",
        json={"year": YEAR, "tables": [{"code": "V2", "by": ["form"]}, {"code": "V4"}]},
        headers=analyst.headers,
    )

    assert corrected.status_code == 200, corrected.text
    assert verified.status_code == 200, verified.text
    assert verified.json()["reproduced"] is True
    assert verified.json()["recomputed_digest"] == release["digest"]
    assert stored.json() == release
    assert today.json()["digest"] != release["digest"]
