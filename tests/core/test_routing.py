"""A request reaches the route FastAPI's own routing would give it: the routers' path guard
(core/http.py `Router`) only passes by routers none of whose routes could answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.convertors import FloatConvertor, IntegerConvertor, PathConvertor, UUIDConvertor
from starlette.routing import Match, Route

from service.core.http import Router

# Paths no operation has, near those that have one.
_STRAY_PATHS = (
    "/",
    "/v1",
    "/v1/",
    "/v1/cases/",
    "/v1/casesx",
    "/v1/cases/not-an-id",
    "/v1/persons",
    "/v1/stats/",
    "/v2/cases",
    "/healthz/",
    "/docs/",
    "/nowhere/at/all",
)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _routers(app: FastAPI) -> list[Router]:
    found = [getattr(route, "original_router", None) for route in app.router.routes]
    return [router for router in found if isinstance(router, Router)]


def _sample(convertor: Any) -> str:
    if isinstance(convertor, UUIDConvertor):
        return str(uuid.uuid4())
    if isinstance(convertor, IntegerConvertor | FloatConvertor):
        return "7"
    if isinstance(convertor, PathConvertor):
        return "some/file.css"
    return "x1"


def _concrete_paths(app: FastAPI) -> Iterator[str]:
    """A path of every route of every router, its parameters filled in."""
    for router in _routers(app):
        for route in router.routes:
            assert isinstance(route, Route)
            path = route.path_format
            for name, convertor in route.param_convertors.items():
                path = path.replace("{" + name + "}", _sample(convertor))
            yield path


def _first_match(app: FastAPI, path: str, method: str) -> tuple[Match, int | None]:
    """Where the app's routing stops for this request: the first route (an included router)
    that matches fully, else the first that matches but for the method."""
    partial: int | None = None
    for index, route in enumerate(app.router.routes):
        scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return match, index
        if match is Match.PARTIAL and partial is None:
            partial = index
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


def test_every_router_of_the_app_guards_its_paths(app: FastAPI) -> None:
    routers = _routers(app)
    assert len(routers) == sum(1 for r in app.router.routes if hasattr(r, "original_router"))
    for router in routers:
        assert router._literal_heads() is not None, router.prefix


def test_every_request_reaches_the_route_fastapis_routing_would_give_it(app: FastAPI) -> None:
    paths = [*_concrete_paths(app), *_STRAY_PATHS]
    guarded = {(p, m): _first_match(app, p, m) for p in paths for m in _METHODS}
    with mock.patch.object(Router, "matches", APIRouter.matches):
        plain = {(p, m): _first_match(app, p, m) for p in paths for m in _METHODS}
    assert guarded == plain
    # Every route is reached by its own path (by one of the methods).
    for path in _concrete_paths(app):
        assert any(guarded[path, m][0] is Match.FULL for m in _METHODS), path


async def test_a_router_holding_another_router_routes_without_the_guard() -> None:
    inner = Router(prefix="/inner")

    @inner.get("/{item}")
    async def read_inner(item: int) -> dict[str, int]:
        return {"item": item}

    outer = Router()
    outer.include_router(inner)

    @outer.get("/plain")
    async def read_plain() -> dict[str, str]:
        return {"plain": "yes"}

    app = FastAPI()
    app.include_router(outer)
    assert outer._literal_heads() is None
    assert inner._literal_heads() == ("/inner/",)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/inner/3")).json() == {"item": 3}
        assert (await client.get("/plain")).json() == {"plain": "yes"}
        assert (await client.get("/elsewhere")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "router_prefix"),
    [
        ("GET", "/v1/cases/{id}", "/v1/cases"),
        ("POST", "/v1/persons/{id}/erase", "/v1/persons"),
        ("GET", "/v1/alerts", "/v1/alerts"),
    ],
)
def test_routers_that_cannot_answer_are_not_asked_which_route_matches(
    app: FastAPI, method: str, path: str, router_prefix: str
) -> None:
    """The routers before the one that answers compare the path with their routes' literal
    beginnings and are done: none of their routes is matched against it (without the guard,
    a request for the last routers was matched against some ninety routes first)."""
    path = path.replace("{id}", str(uuid.uuid4()))
    asked: list[str] = []
    original = APIRoute.matches

    def counting(route: APIRoute, scope: Any) -> Any:
        asked.append(route.path)
        return original(route, scope)

    with mock.patch.object(APIRoute, "matches", counting):
        match, _ = _first_match(app, path, method)
    assert match is Match.FULL
    assert asked
    assert all(p.startswith(router_prefix) for p in asked), asked
