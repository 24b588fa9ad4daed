"""The case read sends the case's view as values (cases.service.CaseValues, through
core.http.json_response), not as a CasePublic that FastAPI serializes: the bytes must be the
ones CasePublic gives, for every shape a case takes."""

from __future__ import annotations

from typing import Any

import httpx

from service.cases.schemas import CasePublic
from service.identity.rules import Role
from tests.support.factories import (
    Factory,
    SignedInUser,
    case_body,
    create_case,
    patch_case,
    person_body,
    refer_for_shelter,
)


async def _read(client: httpx.AsyncClient, user: SignedInUser, case_id: str) -> httpx.Response:
    read = await client.get(f"/v1/cases/{case_id}", headers=user.headers)
    assert read.status_code == 200, read.text
    return read


def _as_the_model_gives_it(body: bytes) -> bytes:
    """The body CasePublic would give for the same case: its fields, in its order, each as it
    serializes them (dates, instants, ids, enums, nulls)."""
    return CasePublic.model_validate_json(body).model_dump_json().encode()


async def test_every_shape_of_a_case_reads_as_casepublic_gives_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    shelter = await factory.user("MIMP", Role.caseworker)
    colleague = await factory.user("PNP", Role.caseworker)
    # A child, two forms (one with its sector), where she is now.
    child = await create_case(
        client,
        police,
        exploitation=[
            {"form": "sexual_exploitation"},
            {"form": "forced_labour", "sector": "gold_mining"},
        ],
    )
    # A foreign adult moved through two countries, no indicators, no place now; identified
    # twice; a witness; referred for shelter (that suggestion no longer listed).
    foreign = case_body(
        route={"origin": "VEN", "transit": ["COL", "ECU"], "destination": "PER"},
        indicators=[],
        person=person_body(nationality="VEN", age_estimate=27, languages=[], lgbti=True),
    )
    del foreign["current_location"], foreign["operation_ref"]
    opened = await client.post("/v1/cases", json=foreign, headers=police.headers)
    assert opened.status_code == 201, opened.text
    adult = opened.json()
    again = case_body(region="15", place="Lima, terminal terrestre", context="other")
    del again["current_location"], again["person"]
    added = await client.post(
        f"/v1/cases/{adult['id']}/identifications", json=again, headers=colleague.headers
    )
    assert added.status_code == 201, added.text
    witness = await patch_case(client, police, adult["id"], {"is_witness": True})
    assert witness.status_code == 200, witness.text
    await refer_for_shelter(client, police, shelter, adult["id"])
    # A closed case: nothing suggested any more.
    closed = await create_case(client, police)
    closing = await client.post(
        f"/v1/cases/{closed['id']}/transitions",
        json={"to": "closed", "reason": "lost_contact"},
        headers=police.headers,
    )
    assert closing.status_code == 201, closing.text

    reads = {
        name: await _read(client, police, case["id"])
        for name, case in {"child": child, "adult": adult, "closed": closed}.items()
    }

    for name, read in reads.items():
        assert read.content == _as_the_model_gives_it(read.content), name
        assert read.headers["content-type"] == "application/json", name
    views: dict[str, dict[str, Any]] = {name: read.json() for name, read in reads.items()}
    # The shapes above are really there (the comparison covered them).
    assert views["child"]["person"]["minor"] is True
    assert views["child"]["current_location"] == "Comisaría de Mazuko"
    assert {f["form"] for f in views["child"]["identifications"][0]["exploitation"]} == {
        "sexual_exploitation",
        "forced_labour",
    }
    adult_view = views["adult"]
    assert adult_view["is_witness"] is True
    assert adult_view["person"]["lgbti"] is True
    assert [
        len(i["route"]["transit"]) if i["route"] else None for i in adult_view["identifications"]
    ] == [2, None]
    assert adult_view["current_location"] is None
    assert ("MIMP", "shelter") not in {
        (s["to_org"], s["purpose"]) for s in adult_view["suggested_referrals"]
    }
    assert adult_view["suggested_referrals"], "a foreign witness is still to be referred"
    assert views["closed"]["status"] == "closed"
    assert views["closed"]["suggested_referrals"] == []


async def test_the_read_sends_what_a_write_route_sends_for_the_same_case(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """A correction answers the case through FastAPI (a CasePublic serialized for its
    response model); a read right after sends the same bytes."""
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)

    corrected = await patch_case(client, police, case["id"], {"is_witness": True})
    read = await _read(client, police, case["id"])

    assert corrected.status_code == 200, corrected.text
    assert read.content == corrected.content
    assert read.headers["etag"] == corrected.headers["etag"]
