"""The hottest reads are answered without FastAPI's resolution of their parameters
(core/http.py `direct_handler`), and answer exactly what FastAPI would: the same bodies, the
same errors in the same order, the same overrides; a route that does not fit keeps
FastAPI's handler."""

# Without `from __future__ import annotations`: the routes below are made in a function and
# name a local alias, which FastAPI resolves only as an object, not as a string.
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.core.http import _direct_plan, direct_handler
from service.identity.rules import Role
from tests.support.factories import Factory, case_body


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Any:
        return direct_handler(self, super().get_route_handler())


class Caller:
    """A bearer scheme as identity's: a callable instance taking only the request."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: Request) -> str:
        self.calls += 1
        token = request.headers.get("x-token")
        if not token:
            raise HTTPException(401, "no token")
        return token


class Thing(BaseModel):
    id: uuid.UUID
    by: str


def _routes(router: APIRouter, caller: Caller) -> None:
    @router.get("/things/{thing_id}", response_model=Thing)
    async def read_thing(
        thing_id: uuid.UUID,
        who: Annotated[str, Depends(caller)],
        again: Annotated[str, Depends(caller)],
    ) -> Response:
        assert who == again
        return Response(Thing(id=thing_id, by=who).model_dump_json(), media_type="application/json")

    @router.get("/numbered/{n}")
    async def read_number(
        n: int, request: Request, who: Annotated[str, Depends(caller)]
    ) -> Response:
        return Response(f"{n} {who} {request.url.path}")

    @router.get("/filtered/{n}")
    async def filtered(n: int, who: Annotated[str, Depends(caller)], q: str = "") -> Response:
        return Response(f"{n} {q}")

    @router.get("/modelled/{n}", response_model=Thing)
    async def modelled(n: int, who: Annotated[str, Depends(caller)]) -> Thing:
        return Thing(id=uuid.UUID(int=n), by=who)

    @router.get("/synced/{n}")
    def synced(n: int, who: Annotated[str, Depends(caller)]) -> Response:
        return Response(str(n))

    async def nested(who: Annotated[str, Depends(caller)]) -> str:
        return who

    @router.get("/nested/{n}")
    async def read_nested(n: int, who: Annotated[str, Depends(nested)]) -> Response:
        return Response(str(n))


def _app(route_class: type[APIRoute]) -> tuple[FastAPI, Caller]:
    caller = Caller()
    router = APIRouter(route_class=route_class)
    _routes(router, caller)
    app = FastAPI()
    app.include_router(router)
    return app, caller


def _routes_of(app: FastAPI) -> dict[str, APIRoute]:
    found: dict[str, APIRoute] = {}
    pending: list[Any] = list(app.router.routes)
    while pending:
        route = pending.pop()
        if hasattr(route, "original_router"):
            pending.extend(route.original_router.routes)
        elif isinstance(route, APIRoute):
            found[route.name] = route
    return found


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose requests FastAPI's dependency resolution solved."""
    seen: list[str] = []
    original = fastapi.routing.solve_dependencies  # type: ignore[attr-defined]

    async def counting(*, request: Request, **kwargs: Any) -> Any:
        seen.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return seen


async def _both(
    call: Callable[[httpx.AsyncClient], Any],
) -> tuple[httpx.Response, httpx.Response, Caller]:
    """The same request to the app with direct routes and to the same app without them."""
    answers = []
    callers = []
    for route_class in (DirectRoute, APIRoute):
        app, caller = _app(route_class)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append(await call(client))
        callers.append(caller)
    return answers[0], answers[1], callers[0]


def test_only_routes_of_path_parameters_and_request_dependencies_returning_a_response_fit() -> None:
    routes = _routes_of(_app(DirectRoute)[0])
    fitting = sorted(name for name, route in routes.items() if _direct_plan(route) is not None)
    # A query parameter, a model returned, a plain function, a dependency of a dependency:
    # each is FastAPI's to resolve.
    assert fitting == ["read_number", "read_thing"]


async def test_a_valid_request_is_answered_without_fastapis_resolution_and_as_fastapi_would(
    resolutions: list[str],
) -> None:
    thing = uuid.uuid4()
    direct, plain, caller = await _both(
        lambda c: c.get(f"/things/{thing}", headers={"x-token": "pnp"})
    )
    assert direct.status_code == plain.status_code == 200
    assert direct.content == plain.content
    assert direct.headers == plain.headers
    assert direct.json() == {"id": str(thing), "by": "pnp"}
    # The app with direct routes resolved nothing; the plain one its one request.
    assert resolutions == [f"/things/{thing}"]
    assert caller.calls == 1, "a dependency named twice is awaited once, as FastAPI caches it"


async def test_the_endpoints_own_request_parameter_is_given(resolutions: list[str]) -> None:
    direct, plain, _ = await _both(lambda c: c.get("/numbered/7", headers={"x-token": "a"}))
    assert direct.text == plain.text == "7 a /numbered/7"
    assert resolutions == ["/numbered/7"]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/things/not-an-id", {"x-token": "pnp"}, 422),
        ("/things/not-an-id", {}, 401),  # the dependency first, as FastAPI: 401 before 422
        (f"/things/{uuid.uuid4()}", {}, 401),
        ("/numbered/1e3", {"x-token": "a"}, 422),
    ],
)
async def test_errors_are_fastapis_own_and_in_its_order(
    path: str, headers: dict[str, str], status: int
) -> None:
    direct, plain, _ = await _both(lambda c: c.get(path, headers=headers))
    assert direct.status_code == plain.status_code == status
    assert direct.json() == plain.json()


async def test_a_parameter_that_does_not_validate_is_left_to_fastapi(
    resolutions: list[str],
) -> None:
    app, _ = _app(DirectRoute)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/things/not-an-id", headers={"x-token": "pnp"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["path", "thing_id"]
    assert resolutions == ["/things/not-an-id"]


async def test_dependency_overrides_are_fastapis_to_apply(resolutions: list[str]) -> None:
    app, caller = _app(DirectRoute)

    async def tester() -> str:
        return "overridden"

    app.dependency_overrides[caller] = tester
    thing = uuid.uuid4()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get(f"/things/{thing}")
    assert answer.json() == {"id": str(thing), "by": "overridden"}
    assert caller.calls == 0
    assert resolutions == [f"/things/{thing}"]


def test_the_apps_hot_reads_are_direct(app: FastAPI) -> None:
    fitting = sorted(
        f"{sorted(route.methods or ())[0]} {route.path}"
        for route in _routes_of(app).values()
        if isinstance(route, fastapi.routing.APIRoute)
        and route.path.startswith("/v1/")
        and _direct_plan(route) is not None
    )
    # The case read and the audited read of a person (bench/http_overhead's), and the one
    # other route of that shape. A change that made them FastAPI's again fails here.
    assert fitting == [
        "GET /v1/cases/{case_id}",
        "GET /v1/cases/{case_id}/person",
        "GET /v1/simulations/{simulation_id}/charts/{name}.png",
    ]


async def test_the_apps_case_read_is_answered_without_fastapis_resolution(
    client: httpx.AsyncClient, factory: Factory, resolutions: list[str]
) -> None:
    headers = (await factory.user("PNP", Role.identifier)).headers
    created = await client.post("/v1/cases", json=case_body(), headers=headers)
    assert created.status_code == 201, created.text
    resolutions.clear()
    read = await client.get(f"/v1/cases/{created.json()['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json()["id"] == created.json()["id"]
    assert resolutions == []
    refused = await client.get("/v1/cases/not-an-id", headers=headers)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["case_id"], refused.json()


async def test_dependencies_of_the_include_are_fastapis_to_resolve(resolutions: list[str]) -> None:
    caller = Caller()
    router = APIRouter(route_class=DirectRoute)
    _routes(router, caller)
    app = FastAPI()
    included: list[str] = []

    async def audited(request: Request) -> None:
        included.append(request.url.path)

    app.include_router(router, dependencies=[Depends(audited)])
    thing = uuid.uuid4()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get(f"/things/{thing}", headers={"x-token": "pnp"})
    assert answer.status_code == 200
    assert included == [f"/things/{thing}"]
    assert resolutions == [f"/things/{thing}"]
