"""Liveness and readiness probes (no authentication, no data)."""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response
from pydantic import BaseModel

from service.core import metrics
from service.core.errors import NotFound, ServiceUnavailable, Unauthorized, problem_responses
from service.core.http import Router
from service.pathway.metrics import domain_gauges
from service.system import service

router = Router(tags=["system"])


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


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        **problem_responses(401, 404),
    },
)
async def read_metrics(request: Request) -> Response:
    """Prometheus metrics of every worker: requests by route template and status, the
    database pool, and the domain's gauges (alerts, beds, waitlists, missed deadlines).
    With RUTA_METRICS_TOKEN set, only for that bearer token; unset, absent in production."""
    settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    allowed = metrics.scrape_allowed(
        token=token,
        production=settings.environment == "production",
        authorization=request.headers.get("authorization"),
    )
    if allowed is None:
        raise NotFound("No resource at this path.")
    if not allowed:
        raise Unauthorized("A scrape of /metrics needs the bearer token RUTA_METRICS_TOKEN.")
    # This worker's pool as it is now (the others sampled theirs within the last second).
    metrics.sample_pool(request.app.state.db.engine)
    body = metrics.exposition(await domain_gauges(request.app.state.db))
    return Response(body, media_type=metrics.CONTENT_TYPE)
