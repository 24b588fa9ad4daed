"""Appending a transaction's events to an audit chain: the head locked, then the events and
the head's new value written; on PostgreSQL the last two are one statement."""

from __future__ import annotations

import uuid

from service.audit.service import record_event, verify_chains
from service.core.db import Database
from service.core.settings import Settings
from service.main import audit_keys
from tests.support.databases import ON_POSTGRES, query
from tests.support.factories import Factory
from tests.support.statements import counting_statements


async def test_a_transaction_s_events_are_appended_in_two_round_trips_on_postgresql(
    db: Database, factory: Factory, settings: Settings
) -> None:
    actor = (await factory.user("PNP")).actor
    entity = uuid.uuid4()
    with counting_statements(db) as counted:
        async with db.session() as session:
            for n in range(3):
                record_event(
                    session,
                    actor=actor,
                    action="test.appended",
                    entity_type="test",
                    entity_id=entity,
                    changes={"n": {"to": n}},
                )

    # The chain head locked; then the events and the new head (one statement on PostgreSQL).
    assert len(counted) == (2 if ON_POSTGRES else 3), counted.statements
    rows = await query(
        db,
        "SELECT e.chain, e.seq, h.seq FROM audit_event e JOIN audit_chain_head h"
        " ON h.chain = e.chain WHERE e.entity_id = :entity ORDER BY e.seq",
        entity=str(entity),
    )
    assert len({chain for chain, _, _ in rows}) == 1  # one chain, in order
    first = rows[0][1]
    assert [seq for _, seq, _ in rows] == [first, first + 1, first + 2]
    assert all(head >= first + 2 for _, _, head in rows)  # the head moved past the last
    async with db.session(write=False) as session:
        report = await verify_chains(session, keys=audit_keys(settings))
    assert report.ok, report.first_break
