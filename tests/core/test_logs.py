"""Structured logs: one JSON line per request with its request id and actor, nothing about a
victim; the same request id in the audit trail; SQL echo printed once, without parameters."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core.db import Database
from service.core.logs import JsonFormatter, TextFormatter
from service.core.requestid import bind_request_id
from service.core.settings import Settings
from tests.support.databases import query, settings_env
from tests.support.factories import Factory, case_body, person_body


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged during the test, as the JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_json_line_per_request_with_route_request_id_and_actor(
    client: httpx.AsyncClient, factory: Factory, json_lines: io.StringIO
) -> None:
    police = await factory.user("PNP")
    name = "Rosalinda"
    family = f"Mamani {uuid.uuid4().hex[:6]}"
    created = await client.post(
        "/v1/cases",
        json=case_body(person=person_body(given_name=name, family_name=family)),
        headers={**police.headers, "X-Request-ID": "log-test-0001"},
    )
    case_id = created.json()["id"]
    read = await client.get(f"/v1/cases/{case_id}", headers=police.headers)
    # A query the route does not take, holding her name: refused (before the caller is
    # known), and neither the name nor the query in the log.
    refused = await client.get(f"/v1/cases/{case_id}?q={name}", headers=police.headers)

    requests = [line for line in _lines(json_lines) if line["logger"] == "ruta.access"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/v1/cases", created.status_code),
        ("GET", "/v1/cases/{case_id}", read.status_code),
        ("GET", "/v1/cases/{case_id}", 422),
    ]
    assert refused.status_code == 422
    assert requests[0]["request_id"] == "log-test-0001"
    assert requests[1]["request_id"] == read.headers["x-request-id"]
    assert requests[2]["request_id"] == refused.headers["x-request-id"]
    for line in requests[:2]:
        assert line["user_id"] == str(police.actor.user_id)
        assert line["organization"] == "PNP"
        assert line["role"] == "identifier"
        assert line["duration_ms"] >= 0
    # What the server logged (the test's own HTTP client logs its URLs too).
    logged = json.dumps([r for r in _lines(json_lines) if r["logger"] != "httpx"])
    assert name not in logged
    assert family not in logged
    assert case_id not in logged


async def test_an_anonymous_request_names_no_actor(
    client: httpx.AsyncClient, json_lines: io.StringIO
) -> None:
    await client.get("/healthz")
    [line] = [r for r in _lines(json_lines) if r["logger"] == "ruta.access"]
    assert line["route"] == "/healthz"
    assert "user_id" not in line


async def test_the_request_id_is_in_the_audit_event(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP")
    created = await client.post(
        "/v1/cases", json=case_body(), headers={**police.headers, "X-Request-ID": "audit-0001-xyz"}
    )
    assert created.headers["x-request-id"] == "audit-0001-xyz"
    rows = await query(
        db,
        "SELECT action FROM audit_event WHERE request_id = :rid",
        rid="audit-0001-xyz",
    )
    assert rows, "no audit event carries the request id"


def test_text_lines_carry_the_request_id_and_extras() -> None:
    record = logging.makeLogRecord({"msg": "GET %s", "args": ("/healthz",), "status": 200})

    def format_in_a_request() -> str:
        bind_request_id("text-line-0001")
        return TextFormatter().format(record)

    line = contextvars.copy_context().run(format_in_a_request)
    assert line.endswith("GET /healthz request_id=text-line-0001 status=200")


_ECHO = """
import asyncio, sqlalchemy as sa
from service.core.db import Database
from service.core.logs import configure_logging
from service.core.settings import Settings

settings = Settings()
configure_logging(settings)

async def main():
    db = Database(settings)
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("SELECT :secret AS echo_marker"), {"secret": "Rosalinda"})
    await db.dispose()

asyncio.run(main())
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_sql_echo_prints_each_statement_once_without_parameters(
    settings: Settings, var_dir: Path, log_format: str
) -> None:
    env = {
        **settings_env(settings),
        "RUTA_SQL_ECHO": "true",
        "RUTA_LOG_FORMAT": log_format,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", _ECHO], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    assert printed.count("echo_marker") == 1, printed
    assert "Rosalinda" not in printed


async def test_an_unexpected_error_is_a_500_problem_logged_by_route_template_not_path(
    settings: Settings, json_lines: io.StringIO
) -> None:
    from service.main import create_app

    app = create_app(settings)

    async def fails(thing_id: str) -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/things/{thing_id}", fails)
    marker = f"Mamani-{uuid.uuid4().hex[:8]}"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client,
    ):
        answer = await client.get(f"/v1/things/{marker}?name={marker}")

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "internal_error"
    assert marker not in answer.text
    errors = [line for line in _lines(json_lines) if line["message"] == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["route"] == "/v1/things/{thing_id}"
    assert marker not in json.dumps([r for r in _lines(json_lines) if r["logger"] != "httpx"])
