"""The HTTP edge: every error a problem document, bodies bounded, Allow, CORS and no-store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.core.settings import Settings
from service.identity.rules import Role
from service.main import create_app
from tests.support.clients import client_from
from tests.support.factories import Factory, create_case, person_body

MIB = 1024 * 1024
SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"region": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b'{"age_estimate": ' + b"9" * 5000 + b"}", id="5000-digit-number"),
        pytest.param(b"[" * 1000 + b"]" * 1000, id="nesting-1000-deep"),
        pytest.param(b'{"region": ', id="truncated"),
    ],
)
async def test_malformed_json_is_a_declared_400_problem(
    client: httpx.AsyncClient, factory: Factory, raw: bytes
) -> None:
    user = await factory.user()
    response = await client.post(
        "/v1/cases", content=raw, headers={**user.headers, "Content-Type": "application/json"}
    )
    body = _assert_problem(response, 400, "malformed_body")
    assert body["title"] == "Malformed request body"


async def test_a_body_of_another_media_type_is_415(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    response = await client.post(
        "/v1/cases", content=b"region=17", headers={**user.headers, "Content-Type": "text/plain"}
    )
    _assert_problem(response, 415, "unsupported_media_type")


async def test_routing_errors_are_problems_with_the_full_allow_header(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    missing = await client.get("/v1/no-such-thing", headers=user.headers)
    wrong = await client.delete("/v1/cases", headers=user.headers)
    options = await client.options("/v1/cases", headers=user.headers)

    _assert_problem(missing, 404, "not_found")
    _assert_problem(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, OPTIONS, POST"
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, OPTIONS, POST"


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(120):
            sent += 1
            yield b" " * MIB

    response = await client.post(
        "/v1/cases",
        content=body(),
        headers={
            **user.headers,
            "Content-Type": "application/json",
            "Content-Length": str(120 * MIB),
        },
    )
    _assert_problem(response, 413, "payload_too_large")
    assert sent <= 1  # httpx may start the stream; the server reads none of it


async def test_a_streamed_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(120):
            sent += 1
            yield b" " * MIB

    response = await client.post(
        "/v1/cases", content=body(), headers={**user.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _assert_problem(response, 413, "payload_too_large")
    assert sent <= settings.max_body_bytes // MIB + 2


async def test_a_body_under_the_limit_is_read(client: httpx.AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    created = await create_case(client, user, person=person_body(given_name="Rosa"))
    assert created["id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/facilities/{facility_id}?as_of=0001-01-01T00:00:00%2B01:00", None),
        ("GET", "/v1/audit/events?since=0001-01-01T00:00:00%2B01:00", None),
        ("GET", "/v1/audit/events?until=9999-12-31T23:59:59-01:00", None),
        ("POST", "/v1/cases/{case_id}/custody-periods", {"start": "0001-01-01T00:00:00+01:00"}),
    ],
)
async def test_a_date_time_out_of_range_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    factory: Factory,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    admin = await factory.user(org="MIMP", role=Role.admin)
    caseworker = await factory.user(org="MIMP", role=Role.caseworker)
    police = await factory.user()
    case = await create_case(client, police)
    user = admin if "audit" in path or "facilities" in path else police
    facilities = (await client.get("/v1/facilities", headers=caseworker.headers)).json()
    url = path.format(case_id=case["id"], facility_id=facilities[0]["id"])
    if body is not None:
        body = {"place": "Comisaría de Mazuko", "kind": "police_station", **body}
    response = await client.request(method, url, json=body, headers=user.headers)

    problem = _assert_problem(response, 422, "validation_error")
    field = url.split("?")[1].split("=")[0] if "?" in url else "start"
    assert field in {e["field"] for e in problem["errors"]}, problem


async def test_tokens_and_v1_responses_are_not_stored_by_caches(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    case = await create_case(client, user)
    token = await client.post(
        "/v1/auth/token", data={"username": user.actor.username, "password": user.password}
    )
    person = await client.get(f"/v1/cases/{case['id']}/person", headers=user.headers)
    refused = await client.get("/v1/cases", headers={"Authorization": "Bearer nope"})
    health = await client.get("/healthz")

    assert token.status_code == 200
    assert person.status_code == 200
    for response in (token, person, refused):
        assert response.headers["cache-control"] == "no-store"
    assert "cache-control" not in health.headers


async def test_cors_answers_only_the_configured_origins(settings: Settings) -> None:
    configured = create_app(settings.model_copy(update={"cors_origins": "https://campo.ruta.pe"}))
    default = create_app(settings)
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, idempotency-key, if-match",
    }
    async with client_from(configured, "198.51.100.1") as c, client_from(default, "1.1.1.1") as d:
        allowed = await c.options(
            "/v1/cases", headers={**preflight, "Origin": "https://campo.ruta.pe"}
        )
        stranger = await c.options("/v1/cases", headers={**preflight, "Origin": "https://evil.pe"})
        simple = await c.get("/healthz", headers={"Origin": "https://campo.ruta.pe"})
        unconfigured = await d.options(
            "/v1/cases", headers={**preflight, "Origin": "https://campo.ruta.pe"}
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://campo.ruta.pe"
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    assert "idempotency-key" in allowed_headers
    assert "if-match" in allowed_headers
    assert "access-control-allow-origin" not in stranger.headers
    exposed = simple.headers["access-control-expose-headers"].lower()
    for header in ("etag", "location", "retry-after", "x-request-id"):
        assert header in exposed
    assert "access-control-allow-origin" not in unconfigured.headers


def test_the_contract_declares_every_error_as_a_problem(app: FastAPI) -> None:
    spec = app.openapi()
    assert "HTTPValidationError" not in json.dumps(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400:
                    assert set(response["content"]) == {PROBLEM}, (method, path, status)
                    schema = response["content"][PROBLEM]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= set(responses), (method, path)
