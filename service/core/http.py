"""HTTP edges every route shares: the body size guard, the caching of /v1 responses and
the query parameters an operation takes."""

from __future__ import annotations

import re

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.errors import problem_response


class BodySizeGuard:
    """Bound every request body: refused before routing or reading a byte of it when its
    Content-Length passes the limit, and as soon as the limit is passed when it streams in
    without one (chunked). Both are the same 413 problem document."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            response = problem_response(
                Request(scope),
                status=413,
                code="payload_too_large",
                title="Content too large",
                detail="The request body is larger than this server accepts.",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the route's body parsing: the problem handler renders it.
                    raise HTTPException(413)
            return message

        await self.app(scope, receive_within_limit, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response under /v1 that sets no caching of its own:
    tokens, identifying data and case files must stay out of shared and browser caches, and a
    route-by-route flag would be forgotten on the next route."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_no_store)


# A query parameter's name quoted in a refusal only when it looks like one: what else a
# client put there (a name, a document number) is not echoed back.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")


def query_parameters_of(dependant: Dependant) -> frozenset[str]:
    """The names of the query parameters an operation takes: its own and its dependencies'
    (pagination, filters), by the name a client sends (the alias)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def refuse_unknown_query(request: Request, known: frozenset[str]) -> None:
    """A query parameter the operation does not take is refused (422 naming it), as an
    unknown field of a body is: a misspelt filter (`has_free_beds`) would otherwise be
    ignored, and the client would take an unfiltered answer for a filtered one."""
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name if _PLAIN_NAME.fullmatch(name) else "?"),
                    "msg": "This operation takes no such query parameter",
                    "input": None,
                }
                for name in unknown
            ]
        )
