"""Optional OpenTelemetry tracing: one span per request, exported over OTLP when configured.

Configured by RUTA_OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://collector:4318) or by the
standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables (the
exporter also reads the other OTEL_EXPORTER_OTLP_* ones: headers, timeout ...). It needs the
optional packages (`pip install 'ruta[otel]'`); without them, or unconfigured, nothing is
traced and nothing is imported. A span is named by the method and route template and carries
the status and the request id: never the path, a query string, or a body.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from service.core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


def tracing_endpoint(settings: Settings) -> str | None:
    """The URL spans are posted to, if tracing is configured: a base endpoint gets the
    OTLP/HTTP path /v1/traces, a traces endpoint is taken as it is (as the OTLP spec says)."""
    base = settings.otel_exporter_otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not settings.otel_exporter_otlp_endpoint and os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if not base:
        return None
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """A provider exporting to the configured OTLP endpoint; None when tracing is off or
    its packages are not installed."""
    endpoint = tracing_endpoint(settings)
    if endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "tracing configured but OpenTelemetry is not installed: pip install 'ruta[otel]'"
        )
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ruta")})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class RequestSpans:
    """Start and end the span of one request, continuing a caller's trace (traceparent)."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import propagate, trace

        self._tracer = provider.get_tracer("ruta")
        self._propagate = propagate
        self._trace = trace

    def start(self, method: str, headers: list[tuple[bytes, bytes]]) -> Any:
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        context = self._propagate.extract(carrier)
        return self._tracer.start_span(
            method,
            context=context,
            kind=self._trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
        )

    def end(
        self, span: Any, *, method: str, route: str, status: int, request_id: str | None
    ) -> None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if request_id is not None:
            span.set_attribute("ruta.request_id", request_id)
        if status >= 500:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()
