"""Dates and date-times at the ends of the calendar are refused or served, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.identity.rules import Role
from tests.support.factories import Factory, create_case

EXTREMES = {
    "date": ["0001-01-01", "9999-12-31"],
    "date-time": ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
}


def _format(spec: dict[str, Any], schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:
            option = spec["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        if option.get("format") in EXTREMES:
            return str(option["format"])
    return None


@pytest.mark.parametrize("role", [Role.admin, Role.caseworker])
async def test_extreme_dates_in_any_query_are_never_a_server_error(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    spec = app.openapi()
    user = await factory.user("MIMP" if role is Role.admin else "PNP", role)
    case = await create_case(client, await factory.user("PNP", Role.caseworker))
    tried = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "get":
                continue
            url = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    # An id is the case's; a table's code is a catalogue code.
                    value = "V1" if parameter["name"] == "code" else case["id"]
                    url = url.replace("{" + parameter["name"] + "}", value)
            for parameter in operation.get("parameters", []):
                kind = _format(spec, parameter["schema"])
                if parameter["in"] != "query" or kind is None:
                    continue
                for value in EXTREMES[kind]:
                    response = await client.get(
                        url, params={parameter["name"]: value}, headers=user.headers
                    )
                    assert response.status_code < 500, (url, parameter["name"], value)
                    # A value out of range is named; a cross-field rule (year, or start and
                    # end) answers with its own code.
                    if (
                        response.status_code == 422
                        and response.json()["code"] == "validation_error"
                    ):
                        fields = {e["field"] for e in response.json().get("errors", [])}
                        assert parameter["name"] in fields, (url, response.text)
                    tried += 1
    assert tried >= 8
