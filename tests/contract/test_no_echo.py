"""Error details never repeat a submitted value: a marker in every field of every operation of
the contract, sent as an admin and as a caseworker, comes back in no response."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from service.identity.rules import Role
from tests.support.factories import Factory, SignedInUser, case_body, create_case

MARK = "ZZMARK"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _resolve(spec, options[0]) if options else schema
    return schema


def _marked(spec: dict[str, Any], schema: dict[str, Any], name: str, depth: int = 0) -> Any:
    """A value of the schema's shape with a marker naming the field in every leaf."""
    schema = _resolve(spec, schema)
    if depth < 4 and schema.get("type") == "object" and "properties" in schema:
        return {
            key: _marked(spec, sub, f"{name}.{key}", depth + 1)
            for key, sub in schema["properties"].items()
        }
    if depth < 4 and schema.get("type") == "array" and "items" in schema:
        return [_marked(spec, schema["items"], f"{name}[]", depth + 1)]
    return f"{MARK}{name}"


def _assert_no_marker(response: httpx.Response, what: str) -> None:
    text = response.text.lower()
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
    assert MARK.lower() not in text, (what, response.status_code, response.text[:500])
    assert MARK.lower() not in headers, (what, response.status_code, headers)


async def _send_marked(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    user: SignedInUser,
    *,
    real_id: str | None,
) -> int:
    sent = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            url = path
            params: dict[str, str] = {}
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                value = f"{MARK}{name}"
                if parameter["in"] == "path":
                    is_uuid = _resolve(spec, parameter["schema"]).get("format") == "uuid"
                    url = url.replace("{" + name + "}", real_id if real_id and is_uuid else value)
                elif parameter["in"] == "query":
                    params[name] = value
            kwargs: dict[str, Any] = {"params": params, "headers": user.headers}
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                kwargs["json"] = _marked(spec, content["application/json"]["schema"], "body")
            elif "application/x-www-form-urlencoded" in content:
                form = _marked(spec, content["application/x-www-form-urlencoded"]["schema"], "f")
                kwargs["data"] = {k: v for k, v in form.items() if isinstance(v, str)}
            response = await client.request(method.upper(), url, **kwargs)
            assert response.status_code < 500, (method, url, response.text[:500])
            _assert_no_marker(response, f"{method.upper()} {url}")
            sent += 1
    return sent


async def test_no_response_repeats_a_marker_sent_in_any_field(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    spec = app.openapi()
    police = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)
    users = [await factory.user("MIMP", Role.admin), police]
    sent = 0
    for user in users:
        for real_id in (None, case["id"]):
            sent += await _send_marked(client, spec, user, real_id=real_id)
    operations = sum(len(ops) for ops in spec["paths"].values())
    assert sent == operations * 4


async def test_no_service_error_repeats_a_marker_in_an_otherwise_valid_body(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.user("MIMP", Role.admin)
    police = await factory.user("PNP", Role.caseworker)
    case = await create_case(client, police)
    facility = {
        "code": "T-MARK",
        "name": "Casa de prueba",
        "operator": "MIMP",
        "region": "24",
        "kind": "ngo_shelter",
        "capacity": 1,
        "min_age": 0,
        "max_age": 120,
        "genders": [],
        "exploitation_forms": ["forced_marriage"],
        "address": "Av. Secreta 123",
    }
    attempts: list[tuple[SignedInUser, str, dict[str, Any], str]] = [
        (police, "/v1/cases", case_body(region=f"{MARK}region"), "region"),
        (police, "/v1/cases", case_body(context=f"{MARK}context"), "context"),
        (admin, "/v1/facilities", {**facility, "operator": f"{MARK}op"}, "operator"),
        (admin, "/v1/facilities", {**facility, "region": f"{MARK}reg"}, "region"),
        (
            police,
            f"/v1/cases/{case['id']}/referrals",
            {"to_org": f"{MARK}org", "purpose": "shelter"},
            "to_org",
        ),
        (
            police,
            f"/v1/cases/{case['id']}/transitions",
            {"to": "closed", "reason": f"{MARK}reason"},
            "reason",
        ),
        (admin, "/v1/simulations", {"reference": f"{MARK}ref"}, "reference"),
    ]
    for user, url, body, field in attempts:
        response = await client.post(url, json=body, headers=user.headers)
        assert 400 <= response.status_code < 500, (url, field, response.text)
        _assert_no_marker(response, f"{url} {field}")
    stats = await client.get(
        "/v1/stats/tables/T1", params={"by": f"{MARK}by", "year": 2025}, headers=admin.headers
    )
    _assert_no_marker(stats, "stats by")
