"""core.http.json_response sends what FastAPI would send for the route's response model."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum

import httpx
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

from service.core.http import json_response


class Colour(StrEnum):
    red = "red"


class Inner(BaseModel):
    at: datetime
    colour: Colour


class Outer(BaseModel):
    id: uuid.UUID
    on: date
    named: str = Field(alias="Named")
    inner: Inner
    many: list[Inner]
    nothing: str | None
    ratio: float
    flags: dict[str, bool]


def _example() -> Outer:
    inner = Inner(at=datetime(2026, 3, 14, 9, 30, 5, 123456, tzinfo=UTC), colour=Colour.red)
    return Outer(
        id=uuid.uuid4(),
        on=date(2026, 3, 14),
        Named='Ñandú "quoted" </script>',
        inner=inner,
        many=[inner, inner],
        nothing=None,
        ratio=0.1,
        flags={"a": True},
    )


async def test_a_model_is_sent_as_fastapi_sends_it() -> None:
    app = FastAPI()
    example = _example()

    @app.get("/fastapi", response_model=Outer)
    async def by_fastapi() -> Outer:
        return example

    @app.get("/direct", response_model=Outer)
    async def direct() -> Response:
        return json_response(example)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        fastapi, ours = await client.get("/fastapi"), await client.get("/direct")

    assert ours.status_code == fastapi.status_code == 200
    assert ours.content == fastapi.content
    assert ours.headers["content-type"] == fastapi.headers["content-type"]
    assert ours.headers["content-length"] == fastapi.headers["content-length"]
    assert b'"Named"' in ours.content  # by alias, as FastAPI sends it
