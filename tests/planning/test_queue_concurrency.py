"""The simulation queue's limit holds when requests race: two requests, on two connections
of one PostgreSQL (as from two workers), count the unfinished jobs and add theirs one after
the other, so that together they never pass RUTA_SIMULATION_QUEUE."""

from __future__ import annotations

import asyncio

import pytest

from service.core.security import Security
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import open_database
from service.planning import service as planning_service
from service.planning.exceptions import SimulationQueueFull
from service.planning.schemas import SimulationCreate
from tests.support.databases import query, waiting_for_a_lock
from tests.support.factories import Factory

LIMIT = 2
# How long the second request may take to reach its wait for the first one's lock.
LOCK_WAIT_SECONDS = 10
REQUEST = SimulationCreate(reference="peru-2016", replications=2, seed=1)


@pytest.mark.postgres
async def test_two_racing_requests_never_queue_past_the_limit(fresh_settings: Settings) -> None:
    db = open_database(fresh_settings)
    try:
        planner = (
            await Factory(db, Security.from_settings(fresh_settings)).user("MIMP", Role.analyst)
        ).actor
        async with db.session() as session:  # one job waiting already: room for one more
            await planning_service.request_simulation(
                session, actor=planner, data=REQUEST, queue_limit=LIMIT
            )
        first_counted = asyncio.Event()
        first_may_commit = asyncio.Event()

        async def first() -> object:
            async with db.session() as session:  # a connection of its own
                job = await planning_service.request_simulation(
                    session, actor=planner, data=REQUEST, queue_limit=LIMIT
                )
                first_counted.set()
                await first_may_commit.wait()  # its job not yet visible to others
                return job

        async def second() -> object:
            await first_counted.wait()
            async with db.session() as session:  # another connection
                return await planning_service.request_simulation(
                    session, actor=planner, data=REQUEST, queue_limit=LIMIT
                )

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await first_counted.wait()
        deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
        while not tasks[1].done() and not await waiting_for_a_lock(db):
            assert asyncio.get_running_loop().time() < deadline, "the second never waited"
            await asyncio.sleep(0.05)
        second_finished_alone = tasks[1].done()
        first_may_commit.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)

        assert not second_finished_alone
        assert not isinstance(outcomes[0], BaseException), outcomes[0]
        assert isinstance(outcomes[1], SimulationQueueFull), outcomes[1]
        assert await query(db, "SELECT count(*) FROM simulation_job") == [(LIMIT,)]
    finally:
        await db.dispose()
