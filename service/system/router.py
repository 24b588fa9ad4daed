"""Liveness and readiness probes (no authentication, no data)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.core.errors import ServiceUnavailable, problem_responses
from service.system import service

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    revision: list[str]


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Readiness:
    """The database answers and is at the migration head; 503 otherwise."""
    current = await service.database_revisions(request.app.state.db)
    if current is None:
        raise ServiceUnavailable("The database cannot be reached.")
    expected: frozenset[str] = request.app.state.head_revisions
    if current != expected:
        raise ServiceUnavailable(
            f"The database is at {sorted(current)}, the code expects {sorted(expected)}:"
            " run `ruta migrate`."
        )
    return Readiness(revision=sorted(current))
