"""The audit appender: the events of audited reads, several requests' in one transaction,
each committed before its caller goes on, none lost when a shared transaction fails or a
caller goes away; and no identifying data shown whose event could not be written."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from service.audit.rules import EventContent
from service.audit.service import AuditAppender, new_event, verify_chains
from service.core.db import Database
from service.identity.rules import Role
from service.main import audit_keys
from tests.support.databases import execute, query
from tests.support.factories import Factory, create_case

REFUSED_ACTION = "test.refused"


def _event(action: str = "test.appended") -> EventContent:
    return new_event(actor=None, action=action, entity_type="test", entity_id=uuid.uuid4())


async def _written(db: Database, events: list[EventContent]) -> set[uuid.UUID]:
    ids = {str(event.entity_id) for event in events}
    rows = await query(db, "SELECT entity_id FROM audit_event WHERE entity_type = 'test'")
    return {uuid.UUID(entity_id) for (entity_id,) in rows if entity_id in ids}


def _ids(events: list[EventContent]) -> set[uuid.UUID]:
    return {uuid.UUID(event.entity_id) for event in events}


@contextlib.contextmanager
def counting_commits(db: Database) -> Iterator[list[int]]:
    """The appender's transactions, each counted by its one INSERT of events (a batch is
    inserted in one statement, whether through a session or the driver: on PostgreSQL the
    appender sends its statements itself, and SQLAlchemy sees no COMMIT of its own)."""
    commits: list[int] = []

    def on_statement(*args: object) -> None:
        statement = str(args[2])
        if statement.startswith("INSERT INTO audit_event "):
            commits.append(1)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        yield commits
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", on_statement)


@contextlib.asynccontextmanager
async def refusing_events(db: Database, action: str) -> AsyncIterator[None]:
    """The database refuses to insert an audit event of `action` while the block runs."""
    if db.dialect == "postgresql":
        await execute(
            db,
            "CREATE FUNCTION ruta_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        )
        await execute(
            db,
            "CREATE TRIGGER ruta_test_refuse BEFORE INSERT ON audit_event FOR EACH ROW "
            f"WHEN (NEW.action = '{action}') EXECUTE FUNCTION ruta_test_refuse()",
        )
    else:
        await execute(
            db,
            "CREATE TRIGGER ruta_test_refuse BEFORE INSERT ON audit_event "
            f"WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
    try:
        yield
    finally:
        await execute(
            db,
            "DROP TRIGGER ruta_test_refuse"
            + (" ON audit_event" if db.dialect == "postgresql" else ""),
        )
        if db.dialect == "postgresql":
            await execute(db, "DROP FUNCTION ruta_test_refuse()")


async def test_events_appended_at_the_same_moment_share_one_transaction(db: Database) -> None:
    appender = AuditAppender(db)
    events = [_event() for _ in range(30)]
    with counting_commits(db) as commits:
        await asyncio.gather(*(appender.append(event) for event in events))
    # Each was committed when its append returned; all in one or two transactions (the
    # first may go alone, before the others are queued), not thirty.
    assert await _written(db, events) == _ids(events)
    assert 1 <= len(commits) <= 2
    async with db.session(write=False) as session:
        assert (await verify_chains(session, keys=audit_keys(db.settings))).ok


async def test_an_event_alone_is_written_at_once_and_committed_on_return(db: Database) -> None:
    appender = AuditAppender(db)
    event = _event()
    with counting_commits(db) as commits:
        await asyncio.wait_for(appender.append(event), timeout=10)
    assert len(commits) == 1
    assert await _written(db, [event]) == _ids([event])


async def test_a_failed_shared_transaction_leaves_each_caller_its_own_outcome(
    db: Database,
) -> None:
    appender = AuditAppender(db)
    fine = [_event() for _ in range(5)]
    refused = _event(REFUSED_ACTION)
    async with refusing_events(db, REFUSED_ACTION):
        outcomes = await asyncio.gather(
            *(appender.append(event) for event in [*fine[:2], refused, *fine[2:]]),
            return_exceptions=True,
        )
    # The shared transaction failed on the refused event: the others were each written
    # alone; only the refused event's caller met the failure.
    assert [isinstance(outcome, Exception) for outcome in outcomes] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert await _written(db, [*fine, refused]) == _ids(fine)


async def test_a_caller_that_goes_away_leaves_its_event_written(db: Database) -> None:
    appender = AuditAppender(db)
    event = _event()
    caller = asyncio.create_task(appender.append(event))
    await asyncio.sleep(0)  # queued, its transaction under way
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller
    await appender.close()  # waits for what was queued
    assert await _written(db, [event]) == _ids([event])


async def test_a_closed_appender_still_writes_each_event_alone(db: Database) -> None:
    appender = AuditAppender(db)
    await appender.close()
    events = [_event() for _ in range(3)]
    with counting_commits(db) as commits:
        await asyncio.gather(*(appender.append(event) for event in events))
    assert len(commits) == 3
    assert await _written(db, events) == _ids(events)


async def test_an_audited_read_shows_nothing_when_its_event_cannot_be_written(
    app: FastAPI, factory: Factory, db: Database
) -> None:
    """As a server answers: a failure the app does not expect is a 500 problem."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
        await _shows_nothing_unaudited(client, factory, db)


async def _shows_nothing_unaudited(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    path = f"/v1/cases/{case['id']}/person"
    shown = await client.get(path, headers=police.headers)
    assert shown.status_code == 200, shown.text
    family_name = shown.json()["family_name"]
    [(before,)] = await query(db, "SELECT count(*) FROM audit_event WHERE action = 'person.viewed'")
    async with refusing_events(db, "person.viewed"):
        refused = await client.get(path, headers=police.headers)
    assert refused.status_code >= 500
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert family_name not in refused.text
    [(after,)] = await query(db, "SELECT count(*) FROM audit_event WHERE action = 'person.viewed'")
    assert after == before
    again = await client.get(path, headers=police.headers)
    assert again.status_code == 200
    assert again.json()["family_name"] == family_name


async def test_an_appended_event_carries_its_request_and_its_reader(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    """The appender writes in a task of its own: what the event says of its request (the id
    returned as X-Request-ID) and of its reader is taken in the request, not there."""
    police = await factory.user("PNP", Role.identifier)
    case = await create_case(client, police)
    shown = await client.get(
        f"/v1/cases/{case['id']}/person",
        headers={**police.headers, "X-Request-ID": "appended-0001-read"},
    )
    assert shown.status_code == 200, shown.text
    assert shown.headers["x-request-id"] == "appended-0001-read"
    rows = await query(
        db,
        "SELECT action, actor_user_id FROM audit_event WHERE request_id = :rid",
        rid="appended-0001-read",
    )
    assert [(action, str(uuid.UUID(str(user)))) for action, user in rows] == [
        ("person.viewed", str(police.actor.user_id))
    ]
