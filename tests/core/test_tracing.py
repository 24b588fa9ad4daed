"""Optional tracing: with an OTLP endpoint configured, each request's span reaches it, named by
route template, with the status and request id and without the path's ids."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings
from service.core.tracing import tracer_provider
from service.main import create_app
from tests.support.clients import client_from
from tests.support.databases import make_settings
from tests.support.factories import Factory, case_body

trace_service = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="tracing needs the [otel] extra",
)


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that keeps what it is sent."""

    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(self.rfile.read(length))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _spans(bodies: list[bytes]) -> list[Any]:
    spans = []
    for body in bodies:
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    return spans


def _attributes(span: Any) -> dict[str, Any]:
    found = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        found[a.key] = getattr(a.value, kind)
    return found


async def test_request_spans_reach_the_configured_collector(
    settings: Settings, var_dir: Path, collector: HTTPServer
) -> None:
    port = collector.server_address[1]
    traced = make_settings(
        settings.database_url, var_dir, otel_exporter_otlp_endpoint=f"http://127.0.0.1:{port}"
    )
    app = create_app(traced)
    async with app.router.lifespan_context(app), client_from(app, "192.0.2.10") as client:
        police = await Factory(app.state.db, app.state.security).user("PNP")
        created = await client.post("/v1/cases", json=case_body(), headers=police.headers)
        case_id = created.json()["id"]
        read = await client.get(
            f"/v1/cases/{case_id}",
            headers={**police.headers, "X-Request-ID": "trace-test-0001"},
        )
    # The lifespan's end shut the provider down, which exported every span.

    bodies: list[bytes] = collector.bodies  # type: ignore[attr-defined]
    spans = {span.name: span for span in _spans(bodies)}
    assert {"POST /v1/cases", "GET /v1/cases/{case_id}"} <= set(spans)
    attributes = _attributes(spans["GET /v1/cases/{case_id}"])
    assert attributes["http.route"] == "/v1/cases/{case_id}"
    assert attributes["http.response.status_code"] == read.status_code
    assert attributes["ruta.request_id"] == "trace-test-0001"
    assert not any(case_id.encode() in body for body in bodies)


def test_no_tracing_unless_configured(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracer_provider(settings) is None


async def test_a_global_tracer_provider_records_nothing_of_ruta_s_requests(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's own telemetry is off: where the process has a global provider (an
    auto-instrumented deployment, say), the framework would record every request's path
    and query (ids) in spans of its own; Ruta's spans are its provider's alone."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    assert trace.get_tracer_provider() is provider
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_from(app, "192.0.2.11") as client:
        police = await Factory(app.state.db, app.state.security).user("PNP")
        created = await client.post("/v1/cases", json=case_body(), headers=police.headers)
        read = await client.get(f"/v1/cases/{created.json()['id']}", headers=police.headers)
    assert read.status_code == 200
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
