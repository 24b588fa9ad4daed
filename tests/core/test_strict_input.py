"""Request bodies are read strictly: no coercion, no unknown field, no control character,
and limits a client can read in openapi.json; no query parameter an operation does not take."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError

from service.core import schemas
from service.core.db import Database
from service.identity.rules import Role
from tests.support.databases import query
from tests.support.factories import Factory, case_body, person_body

MARKER = "zq-marker-7781"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"person": person_body(age_estimate="15")}, "person.age_estimate"),
        # 15.0 is the integer 15 in JSON (and in JSON Schema); 15.5 is not an integer.
        ({"person": person_body(age_estimate=15.5)}, "person.age_estimate"),
        ({"person": person_body(age_estimate=True)}, "person.age_estimate"),
        ({"person": person_body(lgbti="true")}, "person.lgbti"),
        ({"person": person_body(lgbti=1)}, "person.lgbti"),
        ({"identified_on": 1773446400}, "identified_on"),
        ({"identified_on": "1773446400"}, "identified_on"),
        ({"identified_on": "2026-03-14T00:00:00"}, "identified_on"),
        ({"context": 1}, "context"),
        ({"region": 17}, "region"),
        ({"indicators": "debt to employer"}, "indicators"),
        ({"person": {**person_body(), "nickname": MARKER}}, "person.nickname"),
        (
            {"exploitation": [{"form": "sexual_exploitation", "extra": MARKER}]},
            "exploitation.0.extra",
        ),
        ({"operation": MARKER}, "operation"),
        ({"place": f"Mazuko\x00{MARKER}"}, "place"),
        ({"place": f"Mazuko\n{MARKER}"}, "place"),
        ({"place": "   "}, "place"),
        ({"place": "x" * 201}, "place"),
        ({"person": person_body(given_name=f"Rosa\x1b{MARKER}")}, "person.given_name"),
        ({"indicators": [f"debt\x7f{MARKER}"]}, "indicators.0"),
        ({"indicators": ["debt"] * 51}, "indicators"),
    ],
)
async def test_a_loosely_typed_or_unknown_field_is_refused_naming_it_and_never_echoed(
    client: httpx.AsyncClient,
    factory: Factory,
    db: Database,
    override: dict[str, Any],
    field: str,
) -> None:
    police = await factory.user("PNP", Role.identifier)
    [(before,)] = await query(db, "SELECT count(*) FROM case_file")

    response = await client.post("/v1/cases", json=case_body(**override), headers=police.headers)

    [(after,)] = await query(db, "SELECT count(*) FROM case_file")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert MARKER not in response.text
    assert after == before


async def test_a_query_parameter_the_operation_does_not_take_is_refused_naming_it(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    """A misspelt filter is refused, not ignored (the client would take every facility for
    the free ones); the parameters of a route's dependencies (pagination) are its own; a
    name that does not look like one is not echoed; nothing is written."""
    police = await factory.user("PNP", Role.identifier)
    misspelt = await client.get("/v1/facilities?has_free_beds=true", headers=police.headers)
    assert misspelt.status_code == 422, misspelt.text
    assert misspelt.headers["content-type"].startswith("application/problem+json")
    assert misspelt.json()["code"] == "validation_error"
    assert [e["field"] for e in misspelt.json()["errors"]] == ["has_free_beds"]

    spelt = await client.get("/v1/facilities?has_free_bed=true", headers=police.headers)
    assert spelt.status_code == 200, spelt.text
    paged = await client.get("/v1/cases?limit=5&status=identified", headers=police.headers)
    assert paged.status_code == 200, paged.text

    odd = await client.get(
        "/v1/facilities", params={f"{MARKER}\u00e8\x0b": "x"}, headers=police.headers
    )
    assert odd.status_code == 422, odd.text
    assert MARKER not in odd.text

    [(before,)] = await query(db, "SELECT count(*) FROM case_file")
    posted = await client.post("/v1/cases?dry_run=1", json=case_body(), headers=police.headers)
    [(after,)] = await query(db, "SELECT count(*) FROM case_file")
    assert posted.status_code == 422, posted.text
    assert after == before


async def test_free_text_keeps_its_line_breaks_and_is_stripped(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    created = await client.post(
        "/v1/cases", json=case_body(place="  Mazuko  "), headers=police.headers
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assert created.json()["identifications"][0]["place"] == "Mazuko"

    screened = await client.post(
        f"/v1/cases/{case_id}/screenings",
        json={"victim_status": "confirmed", "notes": "First line.\n\tSecond line."},
        headers=police.headers,
    )
    refused = await client.post(
        f"/v1/cases/{case_id}/screenings",
        json={"victim_status": "confirmed", "notes": "A bell\x07"},
        headers=police.headers,
    )

    assert screened.status_code == 201, screened.text
    [read] = (await client.get(f"/v1/cases/{case_id}/screenings", headers=police.headers)).json()
    assert read["notes"] == "First line.\n\tSecond line."
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["notes"]


def test_wire_types_take_only_their_iso_strings() -> None:
    day = TypeAdapter(schemas.Date)
    moment = TypeAdapter(schemas.DateTime)
    ident = TypeAdapter(schemas.Id)

    assert day.validate_python("2016-06-14") == date(2016, 6, 14)
    assert moment.validate_python("2016-06-14T08:00:00-05:00") == datetime(
        2016, 6, 14, 13, 0, tzinfo=UTC
    )
    assert str(ident.validate_python("12345678-1234-4234-8234-123456789abc")).endswith("9abc")
    refused: list[tuple[TypeAdapter[Any], object]] = [
        (day, 1465862400),
        (day, "1465862400"),
        (day, "20160614"),
        (moment, 1465862400),
        (moment, "2016-06-14T08:00:00"),
        (moment, "2016-06-14"),
        (ident, "123456781234423482341234567891bc"),
        (ident, 5),
    ]
    for adapter, value in refused:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_text_types_refuse_control_characters_and_blanks() -> None:
    name = TypeAdapter(schemas.Name)
    text = TypeAdapter(schemas.Text)

    assert name.validate_python(" Rosa Quispe ") == "Rosa Quispe"
    assert text.validate_python("one\r\ntwo\tthree") == "one\r\ntwo\tthree"
    for adapter, value in [
        (name, "a\x00b"),
        (name, "a\nb"),
        (name, "a\x85b"),
        (name, " \t "),
        (name, ""),
        (name, "x" * 201),
        (text, "a\x00b"),
        (text, "a\x0bb"),
        (text, "\n\n"),
        (text, "x" * 2001),
    ]:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _unbounded(spec: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Places in a request schema where JSON Schema does not say what the server refuses."""
    schema = _resolve(spec, schema)
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found += _unbounded(spec, option, where)
    kind = schema.get("type")
    if kind == "object":
        if schema.get("additionalProperties") is not False and "properties" in schema:
            found.append(f"{where}: unknown fields not refused")
        for name, prop in schema.get("properties", {}).items():
            found += _unbounded(spec, prop, f"{where}.{name}")
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}: no maxItems")
        found += _unbounded(spec, schema.get("items", {}), f"{where}[]")
    elif kind == "string":
        bounded = (
            "enum" in schema
            or "const" in schema
            or schema.get("format")
            in {
                "date",
                "date-time",
                "uuid",
            }
        )
        if not bounded and ("maxLength" not in schema or "pattern" not in schema):
            found.append(f"{where}: no maxLength and pattern")
    return found


def test_every_request_body_states_its_limits_in_the_contract(app: FastAPI) -> None:
    spec = app.openapi()
    found: list[str] = []
    bodies = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                if media != "application/json":
                    continue
                bodies += 1
                found += _unbounded(spec, body["schema"], f"{method.upper()} {path}")
    assert bodies > 20
    assert found == []


def test_soles_are_a_decimal_string_with_two_places() -> None:
    from service.legal.schemas import PaymentCreate

    paid = PaymentCreate.model_validate({"amount_soles": "1500.50", "received_on": "2026-01-02"})
    assert paid.amount_soles == Decimal("1500.50")
    for amount in [1500.5, 1500, "1500.505", "0", "-3", "1e3"]:
        with pytest.raises(ValidationError):
            PaymentCreate.model_validate({"amount_soles": amount, "received_on": "2026-01-02"})
