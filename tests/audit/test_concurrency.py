"""Writers in several processes appending at once leave a chain that verifies: each
transaction's own events, and audited reads' events committed several at a time by each
process's audit appender."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from service.audit import service as audit_service
from service.core.security import Security
from service.core.settings import Settings
from service.main import audit_keys, open_database
from tests.support.audit import make_actor
from tests.support.databases import query, settings_to_json
from tests.support.load import assert_no_case_holds_two_beds
from tests.support.writers import write_cases

pytestmark = pytest.mark.slow

EVENTS_PER_CASE = 3  # case.created, case.involvement_started, identification.created
READS_PER_TASK = 15  # events appended by each reader task through its process's appender


async def test_concurrent_writers_in_several_processes_keep_every_chain_valid(
    fresh_settings: Settings,
) -> None:
    processes, tasks, per_task = (4, 4, 10) if fresh_settings.is_sqlite else (6, 6, 12)
    db = open_database(fresh_settings)
    actor = await make_actor(db, Security.from_settings(fresh_settings))
    [(before,)] = await query(db, "SELECT count(*) FROM audit_event")
    actor_fields = {
        "user_id": str(actor.user_id),
        "username": actor.username,
        "organization_id": str(actor.organization_id),
        "organization_code": actor.organization_code,
        "role": actor.role,
    }
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    functools.partial(
                        write_cases,
                        settings_to_json(fresh_settings),
                        actor_fields,
                        tasks,
                        per_task,
                        appended_per_task=READS_PER_TASK,
                    ),
                )
                for _ in range(processes)
            )
        )

    cases = sum(done)
    [(after,)] = await query(db, "SELECT count(*) FROM audit_event")
    chains_used = await query(db, "SELECT count(DISTINCT chain) FROM audit_event")
    async with db.session(write=False) as session:
        report = await audit_service.verify_chains(session, keys=audit_keys(fresh_settings))
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    assert cases == processes * tasks * per_task
    reads = processes * tasks * READS_PER_TASK
    assert after - before == cases * EVENTS_PER_CASE + reads
    assert report.ok, report.first_break and report.first_break.describe()
    assert report.events == after
    if not fresh_settings.is_sqlite:
        # Writers spread over the chains rather than queueing on one.
        assert chains_used[0][0] > 4
