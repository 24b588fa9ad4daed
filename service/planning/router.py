"""/v1/simulations: capacity simulation jobs. Analysts and administrators only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Query, Request, Response, status

from service.core.db import SessionDep
from service.core.errors import problem_responses
from service.core.http import Router
from service.core.schemas import Code
from service.core.security import Actor
from service.identity.dependencies import AuthenticatedRoute, require
from service.identity.rules import Permission
from service.planning import service
from service.planning.jobs import SimulationRunner
from service.planning.models import SimulationJob
from service.planning.rules import JobStatus
from service.planning.schemas import (
    Progress,
    SimulationCreate,
    SimulationPublic,
    SimulationSummary,
)

router = Router(prefix="/v1/simulations", tags=["simulations"], route_class=AuthenticatedRoute)

PlannerDep = Annotated[Actor, Depends(require(Permission.simulations_run))]
PNG = "image/png"


def _runner(request: Request) -> SimulationRunner:
    runner: SimulationRunner = request.app.state.simulations
    return runner


def _summary(job: SimulationJob) -> SimulationSummary:
    return SimulationSummary(
        id=job.id,
        status=JobStatus(job.status),
        scenario_name=job.scenario["name"],
        progress=Progress(done=job.replications_done, total=job.replications_total),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _public(job: SimulationJob, charts: list[str]) -> SimulationPublic:
    return SimulationPublic(
        **_summary(job).model_dump(),
        scenario=job.scenario,
        result=job.result,
        charts={name: f"/v1/simulations/{job.id}/charts/{name}.png" for name in charts},
    )


@router.post(
    "",
    response_model=SimulationPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 422, 503),
)
async def request_simulation(
    body: SimulationCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    actor: PlannerDep,
    session: SessionDep,
) -> SimulationPublic:
    """Queue a simulation of a scenario; poll the `Location` until it has succeeded. 422
    names each bad field of the scenario, and the bounds of one job (replications, days
    simulated, arrivals over all replications); 503 while too many jobs are queued."""
    job = await service.request_simulation(
        session,
        actor=actor,
        data=body,
        queue_limit=request.app.state.settings.simulation_queue,
    )
    # Submitted once the response is sent, after the transaction has committed.
    background.add_task(_runner(request).submit, job.id)
    response.headers["Location"] = f"/v1/simulations/{job.id}"
    return _public(job, [])


@router.get("", response_model=list[SimulationSummary], responses=problem_responses(401, 403))
async def list_simulations(
    actor: PlannerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[SimulationSummary]:
    """The organization's simulations, newest first."""
    return [_summary(j) for j in await service.list_jobs(session, actor=actor, limit=limit)]


@router.get(
    "/{simulation_id}",
    response_model=SimulationPublic,
    responses=problem_responses(401, 403, 404),
)
async def read_simulation(
    simulation_id: uuid.UUID, actor: PlannerDep, session: SessionDep
) -> SimulationPublic:
    """A simulation: its progress, then its results and the links to its charts."""
    job = await service.read_job(session, actor=actor, job_id=simulation_id)
    return _public(job, await service.chart_names(session, job_id=job.id))


@router.get(
    "/{simulation_id}/charts/{name}.png",
    response_class=Response,
    responses={
        **problem_responses(401, 403, 404),
        200: {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
    },
)
async def read_chart(
    simulation_id: uuid.UUID, name: Code, actor: PlannerDep, session: SessionDep
) -> Response:
    """A chart of a finished simulation (occupancy: the fan chart of beds in use)."""
    png = await service.read_chart(session, actor=actor, job_id=simulation_id, name=name)
    return Response(content=png, media_type=PNG)
