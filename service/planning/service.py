"""Simulation jobs: requested over HTTP, run by planning.jobs, read back with their results.

Only the request and the reads are called with an actor; the rest is the job runner's
bookkeeping, audited as the system's (actor None)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.db import for_update, serialize_on, table_of
from service.core.security import Actor
from service.core.time import utcnow
from service.planning import rules
from service.planning.exceptions import (
    ScenarioInvalid,
    SimulationChartNotFound,
    SimulationNotFound,
    SimulationQueueFull,
)
from service.planning.models import SimulationChart, SimulationJob
from service.planning.rules import UNFINISHED, JobStatus
from service.planning.schemas import SimulationCreate
from service.simulation import scenario as scenarios
from service.simulation.scenario import Scenario, ScenarioError

ENTITY = "simulation_job"


def scenario_of(data: SimulationCreate) -> Scenario:
    """The scenario a request names, with its overrides, validated and within one job's
    bounds; ScenarioInvalid names every bad field as the request spells it."""
    if (data.reference is None) == (data.scenario is None):
        raise ScenarioInvalid([("scenario", "give a reference or a scenario, one of the two")])
    where = "reference" if data.scenario is None else "scenario"
    try:
        if data.reference is not None:
            if data.reference not in scenarios.BUILTIN:
                known = ", ".join(scenarios.BUILTIN)
                raise ScenarioInvalid([("reference", f"no built-in scenario (known: {known})")])
            base: dict[str, Any] = scenarios.load(data.reference).model_dump(mode="json")
        else:
            base = data.scenario or {}
        overrides = {"replications": data.replications, "seed": data.seed}
        scenario = scenarios.parse(base | {k: v for k, v in overrides.items() if v is not None})
    except ScenarioError as exc:
        raise ScenarioInvalid(
            [(f"{where}.{field}" if field != "scenario" else where, r) for field, r in exc.problems]
        ) from None
    problems = rules.size_problems(scenario)
    if problems:
        raise ScenarioInvalid(
            [
                (field if field == "replications" and data.replications else f"{where}.{field}", r)
                for field, r in problems
            ]
        )
    return scenario


async def request_simulation(
    session: AsyncSession, *, actor: Actor, data: SimulationCreate, queue_limit: int
) -> SimulationJob:
    """Queue a job for the scenario; refused while `queue_limit` jobs are unfinished. Two
    requests (from any worker) count and add one after the other, so that together they
    never pass the limit."""
    scenario = scenario_of(data)
    await serialize_on(session, "planning:simulation-queue")
    unfinished = await session.scalar(
        select(sa.func.count()).where(col(SimulationJob.status).in_(UNFINISHED))
    )
    if (unfinished or 0) >= queue_limit:
        raise SimulationQueueFull(queue_limit)
    job = SimulationJob(
        status=JobStatus.queued,
        scenario=scenario.model_dump(mode="json"),
        replications_total=scenario.replications,
        created_by=actor.user_id,
        organization_id=actor.organization_id,
    )
    session.add(job)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="simulation.requested",
        entity_type=ENTITY,
        entity_id=job.id,
        changes={
            "scenario": {"to": scenario.name},
            "reference": {"to": data.reference},
            "replications": {"to": scenario.replications},
            "seed": {"to": scenario.seed},
        },
    )
    return job


async def read_job(session: AsyncSession, *, actor: Actor, job_id: uuid.UUID) -> SimulationJob:
    """A job of the caller's organization (another's answers 404)."""
    job = await session.get(SimulationJob, job_id)
    if job is None or job.organization_id != actor.organization_id:
        raise SimulationNotFound()
    return job


async def list_jobs(session: AsyncSession, *, actor: Actor, limit: int) -> Sequence[SimulationJob]:
    """The organization's jobs, newest first."""
    rows = await session.exec(
        select(SimulationJob)
        .where(SimulationJob.organization_id == actor.organization_id)
        .order_by(col(SimulationJob.created_at).desc(), col(SimulationJob.id).desc())
        .limit(limit)
    )
    return rows.all()


async def chart_names(session: AsyncSession, *, job_id: uuid.UUID) -> list[str]:
    """The names of the charts stored for a job."""
    rows = await session.exec(
        select(SimulationChart.name)
        .where(SimulationChart.job_id == job_id)
        .order_by(col(SimulationChart.name))
    )
    return list(rows.all())


async def read_chart(session: AsyncSession, *, actor: Actor, job_id: uuid.UUID, name: str) -> bytes:
    """A chart's PNG."""
    await read_job(session, actor=actor, job_id=job_id)
    png = await session.scalar(
        select(SimulationChart.png).where(
            SimulationChart.job_id == job_id, SimulationChart.name == name
        )
    )
    if png is None:
        raise SimulationChartNotFound()
    return png


# The job runner's bookkeeping.


async def _locked(session: AsyncSession, job_id: uuid.UUID) -> SimulationJob | None:
    stmt = for_update(select(SimulationJob).where(SimulationJob.id == job_id), session)
    return (await session.exec(stmt)).first()


async def start_job(session: AsyncSession, *, job_id: uuid.UUID) -> Scenario | None:
    """Mark a queued job running and give its scenario; None if it is no longer queued."""
    job = await _locked(session, job_id)
    if job is None or job.status != JobStatus.queued:
        return None
    now = utcnow()
    job.status, job.started_at, job.heartbeat_at = JobStatus.running, now, now
    session.add(job)
    record_event(
        session,
        actor=None,
        action="simulation.started",
        entity_type=ENTITY,
        entity_id=job.id,
        changes={"status": {"from": JobStatus.queued, "to": JobStatus.running}},
    )
    return Scenario.model_validate(job.scenario)


async def record_progress(session: AsyncSession, *, job_id: uuid.UUID, done: int) -> None:
    """Replications finished so far (not audited: the job's end is)."""
    await session.exec(
        sa.update(table_of(SimulationJob))
        .where(table_of(SimulationJob).c.id == job_id)
        .values(replications_done=done, heartbeat_at=utcnow())
    )


async def touch_jobs(session: AsyncSession, *, job_ids: Sequence[uuid.UUID]) -> None:
    """The runner still holds these jobs: their heartbeat is now."""
    if job_ids:
        table = table_of(SimulationJob)
        await session.exec(
            sa.update(table)
            .where(table.c.id.in_(list(job_ids)), table.c.status.in_(list(UNFINISHED)))
            .values(heartbeat_at=utcnow())
        )


async def finish_job(
    session: AsyncSession, *, job_id: uuid.UUID, result: dict[str, Any], charts: dict[str, bytes]
) -> None:
    """Store a job's results and charts."""
    job = await _locked(session, job_id)
    if job is None or job.status != JobStatus.running:
        return
    job.status, job.result, job.finished_at = JobStatus.succeeded, result, utcnow()
    job.replications_done = job.replications_total
    session.add(job)
    for name, png in charts.items():
        session.add(SimulationChart(job_id=job_id, name=name, png=png))
    record_event(
        session,
        actor=None,
        action="simulation.succeeded",
        entity_type=ENTITY,
        entity_id=job_id,
        changes={"status": {"from": JobStatus.running, "to": JobStatus.succeeded}},
    )


async def fail_job(session: AsyncSession, *, job_id: uuid.UUID, error: str) -> None:
    """A job that could not finish, with the reason."""
    job = await _locked(session, job_id)
    if job is None or job.status not in UNFINISHED:
        return
    _fail(session, job, error, action="simulation.failed")


def _fail(session: AsyncSession, job: SimulationJob, error: str, *, action: str) -> None:
    before = job.status
    job.status, job.error, job.finished_at = JobStatus.failed, error, utcnow()
    session.add(job)
    record_event(
        session,
        actor=None,
        action=action,
        entity_type=ENTITY,
        entity_id=job.id,
        changes={"status": {"from": before, "to": JobStatus.failed}, "error": {"to": error}},
    )


async def fail_interrupted(session: AsyncSession, *, stale_before: datetime) -> int:
    """Mark failed the unfinished jobs no process has held since `stale_before` (their
    process stopped); how many."""
    stmt = for_update(
        select(SimulationJob).where(
            col(SimulationJob.status).in_(UNFINISHED),
            col(SimulationJob.heartbeat_at) < stale_before,
        ),
        session,
    )
    jobs = (await session.exec(stmt)).all()
    for job in jobs:
        _fail(session, job, rules.INTERRUPTED, action="simulation.interrupted")
    return len(jobs)
