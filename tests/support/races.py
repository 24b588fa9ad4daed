"""Two units of work racing on PostgreSQL, the second started while the first holds its
transaction open: for tests that a lock makes the second wait, then see the first's work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database
from tests.support.databases import waiting_for_a_lock

# How long the second unit may take to reach its wait for the first one's lock.
LOCK_WAIT_SECONDS = 10

Work = Callable[[AsyncSession], Awaitable[object]]


@dataclass(frozen=True)
class Race:
    """What each unit returned or raised, and whether the second finished while the first
    still held its transaction (it did not wait)."""

    first: object
    second: object
    second_finished_alone: bool


async def race_on_a_lock(db: Database, first: Work, second: Work) -> Race:
    """Run `first` in a transaction of its own and keep it open; then `second` in another
    (another connection); once the second waits for a lock (pg_stat_activity) or has
    finished, let the first commit. Each unit's result or exception is returned."""
    first_done = asyncio.Event()
    first_may_commit = asyncio.Event()

    async def run_first() -> object:
        async with db.session() as session:
            result = await first(session)
            first_done.set()
            await first_may_commit.wait()  # holding its transaction open
            return result

    async def run_second() -> object:
        await first_done.wait()
        async with db.session() as session:
            return await second(session)

    tasks = [asyncio.create_task(run_first()), asyncio.create_task(run_second())]
    try:
        await first_done.wait()
        deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
        while not tasks[1].done() and not await waiting_for_a_lock(db):
            assert asyncio.get_running_loop().time() < deadline, "the second never waited"
            await asyncio.sleep(0.05)
        second_finished_alone = tasks[1].done()
    finally:
        first_may_commit.set()
    first_outcome, second_outcome = await asyncio.gather(*tasks, return_exceptions=True)
    return Race(first_outcome, second_outcome, second_finished_alone)
