"""Simulation jobs run in the background of an API process, outside its event loop.

A job's replications run in chunks on a process pool of RUTA_SIMULATION_WORKERS processes;
at most that many jobs run at once (one process each), the others wait in order. After
every chunk the job's progress is written to the database, and the results are summarized
exactly as `runner.simulate` does: replication r depends on (seed, r) alone, so a job's
result is bit-identical to the CLI's for the same scenario and seed.

While the process holds a job (queued or running) it touches the job's heartbeat every few
seconds; when an API process starts, unfinished jobs whose heartbeat has gone stale were
interrupted (their process stopped) and are marked failed, never left running for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from service.core.db import Database
from service.core.requestid import bind_request_id
from service.core.time import utcnow
from service.planning import rules
from service.planning import service as planning_service
from service.simulation.engine import Replication, run
from service.simulation.model import Model, compile_scenario
from service.simulation.runner import Summary, summarize

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_SECONDS)
PROGRESS_STEPS = 20  # progress is written about this many times per job
OCCUPANCY_EVERY = 7.0  # days between samples of beds in use, for the fan chart


def replications(model: Model, first: int, last: int) -> list[Replication]:
    """Replications first..last-1 (in a pool process)."""
    return [run(model, r, occupancy_every=OCCUPANCY_EVERY) for r in range(first, last)]


def charts(summary: Summary, beds: tuple[int, ...], codes: tuple[str, ...]) -> dict[str, bytes]:
    """The job's PNG charts, by name (in a pool process: matplotlib is not thread-safe)."""
    from service.simulation import plots

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "occupancy.png"
        plots.occupancy_fan(summary, beds, codes, path)
        return {"occupancy": path.read_bytes()}


def _context() -> multiprocessing.context.BaseContext:
    # Not fork: the API process has threads (the database driver's) whose locks a forked
    # child would inherit held. A fork server starts clean, with the engine imported once.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["service.planning.jobs"])
        return context
    return multiprocessing.get_context("spawn")


class SimulationRunner:
    """The API process's simulation jobs: admitted by the database, run here."""

    def __init__(self, db: Database, *, workers: int) -> None:
        self.db = db
        self.workers = workers
        self._slots = asyncio.Semaphore(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._heart: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fail the jobs a stopped process left unfinished; start the heartbeat. The API
        starts even when the database cannot answer yet (not migrated, unreachable: /readyz
        says so); the heartbeat then retries until the interrupted jobs are failed."""
        bind_request_id(f"simulations-{uuid.uuid4().hex[:12]}")
        recovered = await self._recover()
        self._heart = asyncio.create_task(self._beat(recovered))

    async def _recover(self) -> bool:
        try:
            async with self.db.session() as session:
                failed = await planning_service.fail_interrupted(
                    session, stale_before=utcnow() - STALE_AFTER
                )
        except Exception:
            log.warning("simulations: interrupted jobs not checked yet", exc_info=True)
            return False
        if failed:
            log.warning("simulations: %d interrupted job(s) marked failed", failed)
        return True

    async def stop(self) -> None:
        """Cancel the jobs in hand (the next start marks them failed) and the pool."""
        tasks = [t for t in (*self._tasks.values(), self._heart) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, job_id: uuid.UUID) -> None:
        """Run a queued job when a worker is free (the request's transaction has committed)."""
        self._tasks[job_id] = asyncio.create_task(self._drive(job_id))

    async def wait(self, job_id: uuid.UUID) -> None:
        """Until the job in hand has finished (for tests and orderly shutdowns)."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_context())
        return self._pool

    async def _beat(self, recovered: bool) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not recovered:
                recovered = await self._recover()
            if not self._tasks:
                continue
            try:
                async with self.db.session() as session:
                    await planning_service.touch_jobs(session, job_ids=list(self._tasks))
            except Exception:  # the heartbeat must outlive a failed round
                log.exception("simulations: heartbeat failed")

    async def _drive(self, job_id: uuid.UUID) -> None:
        bind_request_id(f"simulation-{job_id.hex[:12]}")
        try:
            async with self._slots:
                await self._run(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("simulation %s failed", job_id)
            async with self.db.session() as session:
                await planning_service.fail_job(
                    session, job_id=job_id, error=f"{type(exc).__name__}: {exc}"
                )
        finally:
            self._tasks.pop(job_id, None)

    async def _run(self, job_id: uuid.UUID) -> None:
        async with self.db.session() as session:
            scenario = await planning_service.start_job(session, job_id=job_id)
        if scenario is None:
            return
        loop = asyncio.get_running_loop()
        pool = self._executor()
        model = await asyncio.to_thread(compile_scenario, scenario)
        total = scenario.replications
        size = max(1, math.ceil(total / PROGRESS_STEPS))
        runs: list[Replication] = []
        for first in range(0, total, size):
            last = min(first + size, total)
            runs.extend(await loop.run_in_executor(pool, replications, model, first, last))
            async with self.db.session() as session:
                await planning_service.record_progress(session, job_id=job_id, done=last)
        summary = await asyncio.to_thread(summarize, model, runs)
        pngs = await loop.run_in_executor(pool, charts, summary, model.beds, model.codes)
        async with self.db.session() as session:
            await planning_service.finish_job(
                session, job_id=job_id, result=rules.result_of(summary), charts=pngs
            )
