"""The sessions of requests that only read: no transaction, no write, nothing left open.

A GET not marked `writes` runs its statements without BEGIN and COMMIT
(`Database.session(transaction=False)`): each statement sees the database as it is when it
runs, a statement that would write is refused before it runs, and counting (temporary
tables) refuses such a session. On SQLite, a connection goes back to the pool without a
rollback when its transaction has ended, and with one when it has not.
"""

# ruff: noqa: S608 (SQL built with the name of the test's own table)
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
import sqlalchemy as sa

from service.cases.models import CaseFile, CaseInvolvement
from service.core.db import (
    Database,
    Rows,
    in_transaction,
    insert_rows,
    instance_row,
    persistent,
    row_of,
    table_of,
)
from service.core.time import utcnow
from service.persons.models import Person, PersonIdentifierClaim, PersonKey
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_table
from tests.support.databases import ON_POSTGRES, execute, query
from tests.support.statements import counting_statements


@pytest.fixture
async def probe(db: Database) -> AsyncIterator[str]:
    """A table of this test's own, dropped afterwards."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    await execute(db, f"CREATE TABLE {name} (n INTEGER NOT NULL)")
    yield name
    await execute(db, f"DROP TABLE {name}")


async def test_a_reading_session_holds_no_snapshot_and_blocks_no_writer(
    db: Database, probe: str
) -> None:
    count = sa.text(f"SELECT count(*) FROM {probe}")
    async with db.session(write=False, transaction=False) as reading:
        assert not in_transaction(reading)
        before = (await reading.exec(count)).scalar_one()  # type: ignore[call-overload]
        # Another connection writes and commits between the two reads; in a transaction
        # (SQLite's deferred one holds a snapshot) the second read would not see it.
        await execute(db, f"INSERT INTO {probe} (n) VALUES (1)")
        after = (await reading.exec(count)).scalar_one()  # type: ignore[call-overload]
    assert (before, after) == (0, 1)

    async with db.session(write=False) as transactional:
        assert in_transaction(transactional)


async def test_a_write_in_a_reading_session_is_refused_before_it_runs(db: Database) -> None:
    case_file = table_of(CaseFile)
    [(before,)] = await query(db, "SELECT count(*) FROM case_file")
    with pytest.raises(RuntimeError, match="without a transaction"):
        async with db.session(write=False, transaction=False) as reading:
            await reading.exec(
                sa.insert(case_file).values(
                    id=uuid.uuid4(),
                    person_id=uuid.uuid4(),
                    status="identified",
                    victim_status="suspected",
                )
            )
    with pytest.raises(RuntimeError, match="without a transaction"):
        async with db.session(write=False, transaction=False) as reading:
            await reading.exec(sa.update(case_file).values(is_witness=True))
    [(after,)] = await query(db, "SELECT count(*) FROM case_file")
    assert after == before


async def test_counting_refuses_a_session_without_a_transaction(db: Database) -> None:
    spec = CATALOGUE["V1"]
    scope = Scope(start=date(2016, 1, 1), end=date(2016, 12, 31), known_on=utcnow())
    async with db.session(write=False, transaction=False) as reading:
        with pytest.raises(RuntimeError, match="Counting needs a transaction"):
            await count_table(reading, spec=spec, dimensions=breakdown(spec, None), scope=scope)
    async with db.session(write=False) as transactional:  # the same count, in a transaction
        counted = await count_table(
            transactional, spec=spec, dimensions=breakdown(spec, None), scope=scope
        )
    assert counted.total >= 0


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's pool: PostgreSQL keeps the pool's own reset")
async def test_sqlite_rolls_back_a_transaction_left_open_when_the_connection_returns(
    db: Database, probe: str
) -> None:
    async with db.engine.connect() as conn:
        # Straight through the driver, past SQLAlchemy's own transaction: only the pool's
        # reset can end this one.
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute(f"INSERT INTO {probe} (n) VALUES (7)")
        assert driver.in_transaction
    assert await query(db, f"SELECT n FROM {probe}") == []
    # The write lock went with it: a writer gets in at once.
    await execute(db, f"INSERT INTO {probe} (n) VALUES (8)")
    assert await query(db, f"SELECT n FROM {probe}") == [(8,)]


def test_a_row_gets_the_models_defaults_and_refuses_what_the_model_does_not_have() -> None:
    case_id = uuid.uuid4()
    given = {"case_id": case_id, "organization_id": uuid.uuid4()}
    first, second = (row_of(CaseInvolvement, **given, basis="identified") for _ in range(2))
    # Every column, the given values as given, each default factory called anew.
    assert set(first) == {c.key for c in table_of(CaseInvolvement).columns}
    assert (first["case_id"], first["basis"], first["source_id"], first["ended_at"]) == (
        case_id,
        "identified",
        None,
        None,
    )
    assert first["id"] != second["id"]
    assert first["started_at"].tzinfo is not None
    with pytest.raises(KeyError, match="CaseInvolvement has no column colour"):
        row_of(CaseInvolvement, **given, basis="identified", colour=1)
    with pytest.raises(KeyError, match=r"CaseInvolvement\.basis has no default"):
        row_of(CaseInvolvement, **given)


async def test_an_instance_inserted_without_a_flush_is_persistent_in_its_session(
    db: Database,
) -> None:
    person = Person(gender="female", nationality="VEN", languages=["es"])
    case = CaseFile(person_id=person.id, status="identified", victim_status="suspected")
    async with db.session() as session:
        with counting_statements(db) as counted:
            await insert_rows(session, instance_row(person))
            persistent(session, person)
            await insert_rows(session, instance_row(case))
            persistent(session, case)
            # Found in the session's identity map: no statement, the same instance.
            assert await session.get(CaseFile, case.id) is case
            assert await session.get(Person, person.id) is person
        assert [s.split()[:3] for s in counted.statements] == [
            ["INSERT", "INTO", "person"],
            ["INSERT", "INTO", "case_file"],
        ]
        # A change to the instance is an UPDATE at the next flush, its version checked.
        case.is_witness = True
    case_file, person_table = table_of(CaseFile), table_of(Person)
    async with db.engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(case_file.c.is_witness, case_file.c.row_version).where(
                    case_file.c.id == case.id
                )
            )
        ).one()
        languages = (
            await conn.execute(
                sa.select(person_table.c.languages).where(person_table.c.id == person.id)
            )
        ).scalar_one()
    assert tuple(stored) == (True, 2)
    assert languages == ["es"]


async def test_rows_of_several_tables_are_one_statement_on_postgresql(db: Database) -> None:
    person = Person(gender="female", nationality="PER")
    key = row_of(PersonKey, person_id=person.id, master_key_id="k1", wrapped_key=b"\x00" * 8)
    claims = table_of(PersonIdentifierClaim)

    def claim(person_id: uuid.UUID) -> Rows:
        row = row_of(PersonIdentifierClaim, kind="document", digest="d" * 64, person_id=person_id)
        return Rows(PersonIdentifierClaim, [row], ignoring_conflicts_on=("kind", "digest"))

    async with db.session() as session:
        with counting_statements(db) as counted:
            # The child rows refer to the person inserted by the same call.
            won = await insert_rows(
                session,
                instance_row(person),
                Rows(PersonKey, [key]),
                claim(person.id),
                returning=claims.c.person_id,
            )
        persistent(session, person)
        assert won == [person.id]
        assert len(counted) == (1 if ON_POSTGRES else 3), counted.statements
        # A row colliding on the conflict columns is skipped: nothing returned for it.
        other = Person(gender="male", nationality="PER")
        lost = await insert_rows(
            session, instance_row(other), claim(other.id), returning=claims.c.person_id
        )
        assert lost == []
    async with db.engine.connect() as conn:
        holder = (
            await conn.execute(sa.select(claims.c.person_id).where(claims.c.digest == "d" * 64))
        ).scalar_one()
        keys = (
            await conn.execute(
                sa.select(sa.func.count()).where(table_of(PersonKey).c.person_id == person.id)
            )
        ).scalar_one()
    assert (holder, keys) == (person.id, 1)


async def test_a_failing_part_inserts_nothing_of_the_others(db: Database) -> None:
    person = Person(gender="female", nationality="PER")
    orphan = row_of(PersonKey, person_id=uuid.uuid4(), master_key_id="k1", wrapped_key=b"\x00")
    with pytest.raises(sa.exc.IntegrityError):  # the key's person does not exist
        async with db.session() as session:
            await insert_rows(session, instance_row(person), Rows(PersonKey, [orphan]))
    async with db.engine.connect() as conn:
        stored = (
            await conn.execute(sa.select(sa.func.count()).where(table_of(Person).c.id == person.id))
        ).scalar_one()
    assert stored == 0
