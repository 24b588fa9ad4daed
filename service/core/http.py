"""HTTP edges every route shares: the body size guard, the caching of /v1 responses, the
query parameters an operation takes and the routing of a request to its router."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import fastapi.routing
import pydantic_core
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
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


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def direct_handler(route: APIRoute, full: Handler) -> Handler:
    """The route's handler without FastAPI's resolution of its parameters, where the route is
    simple enough for that to change nothing: for the hottest reads. `full` is FastAPI's own
    handler of the route, which answers every request the direct one does not.

    A route fits when it takes only path parameters and dependencies that take nothing but
    the request (a coroutine, no sub-dependency: the bearer schemes of identity), and its
    endpoint is a coroutine declared to return a `Response` (sent as is, as FastAPI sends
    one). FastAPI's resolution builds, per request, the values of every dependency through
    its cache, a sub-response and the endpoint's context; a fifth of a case read's
    instructions. The direct handler does what it would for such a route, in its order: each
    dependency awaited with the request (once, however often it is named), then each path
    parameter validated by the same field. A path parameter that does not validate, or
    dependency overrides (tests), are left to `full`: FastAPI's own error document, its own
    overrides. A route that does not fit keeps `full`."""
    built = _as_built(route)
    plan = _direct_plan(built)
    if plan is None:
        return full
    dependencies, path_fields, endpoint = plan
    own_request = built.dependant.request_param_name
    overrides = getattr(built, "dependency_overrides_provider", None)

    async def direct(request: Request) -> Response:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return await full(request)
        values: dict[str, Any] = {}
        solved: dict[Callable[..., Any], Any] = {}
        for name, call, param in dependencies:
            if call not in solved:
                solved[call] = await call(**{param: request})
            values[name] = solved[call]
        given = request.path_params
        for field, loc in path_fields:
            value, errors = field.validate(given.get(loc[1]), values, loc=loc)
            if errors:
                return await full(request)
            values[field.name] = value
        if own_request is not None:
            values[own_request] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):  # its declared return type says otherwise
            raise TypeError(f"{route.name} returned {type(response).__name__}, not a Response")
        return response

    return direct


_DirectPlan = tuple[
    list[tuple[str, Callable[..., Awaitable[Any]], str]],
    list[tuple[Any, tuple[str, str]]],
    Callable[..., Awaitable[Any]],
]


def _as_built(route: APIRoute) -> Any:
    """The route as FastAPI builds its handler at this moment: a route of an included router
    is built once per inclusion, from its "effective context" (the include's dependencies
    added to the route's, the app as the provider of overrides), set in a context variable
    around `get_route_handler` (FastAPI >= 0.16x; before, the route itself)."""
    context = getattr(fastapi.routing, "_effective_route_context_var", None)
    effective = context.get() if context is not None else None
    if effective is not None and getattr(effective, "original_route", None) is route:
        return effective
    return route


def _direct_plan(route: Any) -> _DirectPlan | None:
    """What `direct_handler` calls for the route, or None when the route does not fit."""
    top = route.dependant
    endpoint = top.call
    if endpoint is None or not inspect.iscoroutinefunction(endpoint) or _has_special(top):
        return None
    returns = get_typed_return_annotation(endpoint)
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return None
    if top.query_params or top.header_params or top.cookie_params or top.body_params:
        return None
    dependencies: list[tuple[str, Callable[..., Awaitable[Any]], str]] = []
    for sub in top.dependencies:
        call = sub.call
        if (
            sub.name is None  # a dependency of the decorator: none of these routes has one
            or call is None
            or sub.request_param_name is None
            or sub.dependencies
            or sub.path_params
            or sub.query_params
            or sub.header_params
            or sub.cookie_params
            or sub.body_params
            or _has_special(sub)
            or sub.concurrency is not None
            or not _is_coroutine_callable(call)
        ):
            return None
        dependencies.append((sub.name, call, sub.request_param_name))
    path_fields: list[tuple[Any, tuple[str, str]]] = []
    for field in top.path_params:
        annotation = field.field_info.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            return None  # parameters as a model: FastAPI's own extraction
        path_fields.append((field, ("path", field.alias)))
    return dependencies, path_fields, endpoint


def _is_coroutine_callable(call: Callable[..., Any]) -> bool:
    """A coroutine function, or an instance whose __call__ is one (identity's schemes)."""
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _has_special(dependant: Dependant) -> bool:
    """Whether the dependant takes what only FastAPI's resolution provides."""
    return any(
        name is not None
        for name in (
            dependant.websocket_param_name,
            dependant.http_connection_param_name,
            dependant.response_param_name,
            dependant.background_tasks_param_name,
            dependant.security_scopes_param_name,
        )
    )


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
