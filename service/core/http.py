"""HTTP edges every route shares: the body size guard, the caching of /v1 responses, the
query parameters an operation takes and the routing of a request to its router."""

from __future__ import annotations

import re
from typing import Any

import pydantic_core
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette._utils import get_route_path  # the path routes match (FastAPI's too)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
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


def json_response(content: Any) -> Response:
    """The JSON answer of a route, as FastAPI would send it for the route's `response_model`,
    without FastAPI's pass over it: for the hottest reads.

    `content` is an instance of the route's response model (not a subclass: FastAPI would
    drop the subclass's fields, this would send them), or its values as JSON-able Python
    (a dict of its fields in the model's order, nested models as models or values; see
    cases.service.CaseValues). Given a model, FastAPI validates it again against the response
    model and serializes it through a TypeAdapter; given values, it builds the model first.
    pydantic-core's serializer gives the same bytes (tests/core/test_json_response.py,
    tests/cases/test_case_view.py) for a tenth of a case read's instructions less. A route
    returning a Response is sent as is (FastAPI's "return a Response directly");
    `response_model` still documents it in OpenAPI. Headers go on the returned response: a
    `Response` parameter of the route is not merged into it."""
    return Response(pydantic_core.to_json(content, by_alias=True), media_type="application/json")


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


class Router(APIRouter):
    """FastAPI's APIRouter, which a request whose path none of its routes could match passes
    by at once. Every router of the app is one.

    The app finds a request's route by asking each included router in turn whether one of
    its routes matches, and FastAPI asks each route of each router (a regular expression,
    and bookkeeping around it: about 4 µs a route on this machine). A request for the last
    routers (persons, alerts, stats) paid 300-430 µs of routing before its own work, a case
    read 66 µs. Here a router first compares the path with the literal beginning of each of
    its routes' paths (up to the first parameter): a route can match, fully or but for its
    method, only a path that begins so. Which route answers a request is unchanged; only
    routers that could not answer it are not asked.

    Include it without a prefix of its own (`app.include_router(router)`): its routes' paths
    carry its prefix already, and are what the path is compared with. Routes that are not
    plain paths (an included router, a mount) turn the comparison off for their router.
    tests/core/test_routing.py routes every path of every route as FastAPI alone would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: tuple[str, ...] | None = ()
        self._heads_of = -1  # the number of routes the heads were found for

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        heads = self._literal_heads()
        if (
            heads is not None
            and scope["type"] == "http"
            and not get_route_path(scope).startswith(heads)
        ):
            return Match.NONE, {}
        return super().matches(scope)

    def _literal_heads(self) -> tuple[str, ...] | None:
        """The literal beginnings of the routes' paths; None when a route is not a plain
        path. Found again when routes were added (they are, after the router is made)."""
        if self._heads_of != len(self.routes):
            self._heads = _literal_heads_of(self.routes)
            self._heads_of = len(self.routes)
        return self._heads


def _literal_heads_of(routes: list[BaseRoute]) -> tuple[str, ...] | None:
    heads: set[str] = set()
    for route in routes:
        if not isinstance(route, Route):  # an included router, a mount, a websocket
            return None
        heads.add(route.path_format.split("{", 1)[0])
    return tuple(sorted(heads))
