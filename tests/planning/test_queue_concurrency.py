"""The simulation queue's limit holds when requests race: two requests, on two connections
of one PostgreSQL (as from two workers), count the unfinished jobs and add theirs one after
the other, so that together they never pass RUTA_SIMULATION_QUEUE."""

from __future__ import annotations

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.security import Security
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import open_database
from service.planning import service as planning_service
from service.planning.exceptions import SimulationQueueFull
from service.planning.schemas import SimulationCreate
from tests.support.databases import query
from tests.support.factories import Factory
from tests.support.races import race_on_a_lock

LIMIT = 2
REQUEST = SimulationCreate(reference="peru-2016", replications=2, seed=1)


@pytest.mark.postgres
async def test_two_racing_requests_never_queue_past_the_limit(fresh_settings: Settings) -> None:
    db = open_database(fresh_settings)
    try:
        planner = (
            await Factory(db, Security.from_settings(fresh_settings)).user("MIMP", Role.analyst)
        ).actor

        async def request(session: AsyncSession) -> object:
            return await planning_service.request_simulation(
                session, actor=planner, data=REQUEST, queue_limit=LIMIT
            )

        async with db.session() as session:  # one job waiting already: room for one more
            await request(session)

        # The second counts the queue while the first's job is uncommitted: it must wait.
        race = await race_on_a_lock(db, request, request)

        assert not race.second_finished_alone
        assert not isinstance(race.first, BaseException), race.first
        assert isinstance(race.second, SimulationQueueFull), race.second
        assert await query(db, "SELECT count(*) FROM simulation_job") == [(LIMIT,)]
    finally:
        await db.dispose()
