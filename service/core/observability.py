"""The one middleware that watches every request: its metrics, its log line, its span."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core import logs, metrics
from service.core.requestid import current_request_id
from service.core.tracing import RequestSpans


class ObservabilityMiddleware:
    """Pure ASGI middleware, inside the request id's: times the request, then counts it by
    route template and status, writes its one log line and ends its span (when tracing)."""

    def __init__(self, app: ASGIApp, *, spans: RequestSpans | None = None) -> None:
        self.app = app
        self.spans = spans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = metrics.method_label(scope)
        actor = logs.begin_request()
        span: Any = None
        if self.spans is not None:
            span = self.spans.start(method, scope["headers"])
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - started
            route = metrics.route_template(scope)
            metrics.observe_request(method, route, status, seconds)
            logs.log_request(
                method=method, route=route, status=status, seconds=seconds, actor=actor
            )
            if span is not None and self.spans is not None:
                self.spans.end(
                    span, method=method, route=route, status=status, request_id=current_request_id()
                )
