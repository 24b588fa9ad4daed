"""RUTA_STATS_DATABASE_URL: statistics are counted in a read replica, in read-only
transactions (as a hot standby's are), while the releases they publish, their audit events
and the privacy budget are recorded in the primary.

The replica here is a copy of the primary taken at a moment (SQLite: VACUUM INTO; PostgreSQL:
CREATE DATABASE ... TEMPLATE, then made read-only for every session): persons identified after
the copy are in the primary only, so a count that includes them was not read from the copy.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_tables
from tests.support.databases import (
    ON_POSTGRES,
    POSTGRES_URL,
    create_database,
    drop_database,
    make_settings,
    migrate_and_seed,
    query,
)
from tests.support.factories import Factory, SignedInUser, create_case, person_body

YEAR = 2004
BEFORE_COPY = 12
AFTER_COPY = 12


@dataclass(frozen=True)
class Replicated:
    primary: Settings
    replica_url: str
    app: FastAPI
    client: httpx.AsyncClient
    analyst: SignedInUser


async def _identify(client: httpx.AsyncClient, user: SignedInUser, n: int) -> None:
    """n girls identified in YEAR who consent to statistics."""
    for i in range(n):
        case = await create_case(
            client,
            user,
            identified_on=date(YEAR, 1 + i % 12, 7).isoformat(),
            region="17",
            person=person_body(),
        )
        consent = await client.post(
            f"/v1/cases/{case['id']}/consents",
            json={"purposes": ["statistics"], "language": "es"},
            headers=user.headers,
        )
        assert consent.status_code == 201, consent.text


async def _copy(primary_url: str, var_dir: Path) -> str:
    """A copy of the primary as it is now, read-only for everyone (a standby's state)."""
    if not ON_POSTGRES:
        source = make_url(primary_url).database
        assert source is not None
        target = var_dir / f"replica_{uuid.uuid4().hex[:12]}.db"
        with sqlite3.connect(source) as conn:
            conn.execute("VACUUM INTO ?", (str(target),))
        return f"sqlite+aiosqlite:///{target}"
    name = f"ruta_replica_{uuid.uuid4().hex[:12]}"
    source = make_url(primary_url).database
    admin = make_url(POSTGRES_URL).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        await conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await conn.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def replicated(var_dir: Path) -> AsyncIterator[Replicated]:
    url = await create_database(var_dir)
    primary = make_settings(url, var_dir)
    await migrate_and_seed(primary)
    before = create_app(primary)
    async with before.router.lifespan_context(before):
        factory = Factory(before.state.db, before.state.security)
        police = await factory.user("PNP", Role.identifier)
        analyst = await factory.user("MIMP", Role.analyst)
        transport = httpx.ASGITransport(app=before, client=("203.0.113.21", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            await _identify(client, police, BEFORE_COPY)
    # Every connection to the primary is closed: PostgreSQL copies only an idle template.
    replica_url = await _copy(url, var_dir)
    settings = primary.model_copy(update={"stats_database_url": replica_url})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.22", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            await _identify(client, police, AFTER_COPY)
            yield Replicated(primary, replica_url, app, client, analyst)
    await drop_database(replica_url)
    await drop_database(url)


def _total(table: dict[str, Any]) -> Any:
    return table["total"].get("value", "suppressed")


async def test_tables_are_counted_in_the_replica(replicated: Replicated) -> None:
    r = replicated

    table = await r.client.get(f"/v1/stats/tables/V1?year={YEAR}", headers=r.analyst.headers)

    assert table.status_code == 200, table.text
    # The persons identified after the copy are in the primary only.
    assert _total(table.json()) == BEFORE_COPY
    async with r.app.state.db.session(write=False) as session:
        [on_primary] = await count_tables(
            session,
            tables=[(CATALOGUE["V1"], breakdown(CATALOGUE["V1"], None))],
            scope=Scope(start=date(YEAR, 1, 1), end=date(YEAR, 12, 31), known_on=utcnow()),
        )
    assert on_primary.total == BEFORE_COPY + AFTER_COPY


async def test_a_release_counted_in_the_replica_is_recorded_in_the_primary(
    replicated: Replicated,
) -> None:
    r = replicated

    response = await r.client.post(
        "/v1/stats/releases",
        json={"year": YEAR, "tables": [{"code": "V1"}, {"code": "V4"}]},
        headers=r.analyst.headers,
    )

    assert response.status_code == 201, response.text
    release = response.json()
    assert [_total(t) for t in release["tables"]] == [BEFORE_COPY, BEFORE_COPY]
    primary: Database = r.app.state.db
    replica: Database = r.app.state.stats_db
    assert (release["digest"],) in await query(primary, "SELECT digest FROM stats_release")
    published = await query(
        primary, "SELECT entity_id FROM audit_event WHERE action = 'stats.release_published'"
    )
    assert uuid.UUID(release["id"]) in {uuid.UUID(e) for (e,) in published}
    assert await query(replica, "SELECT id FROM stats_release") == []
    # Recomputed in the replica as known on its day: the same digest.
    verified = await r.client.post(
        f"/v1/stats/releases/{release['id']}/verify", headers=r.analyst.headers
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["reproduced"] is True


async def test_a_dp_release_spends_the_budget_in_the_primary(replicated: Replicated) -> None:
    r = replicated

    response = await r.client.post(
        "/v1/stats/releases",
        json={"year": YEAR, "method": "dp", "epsilon": "0.5"},
        headers=r.analyst.headers,
    )

    assert response.status_code == 201, response.text
    budget = "SELECT spent_micro FROM privacy_budget WHERE year = :y"
    assert await query(r.app.state.db, budget, y=YEAR) == [(500_000,)]
    assert await query(r.app.state.stats_db, budget, y=YEAR) == []


async def test_the_replica_refuses_writes(replicated: Replicated) -> None:
    replica: Database = replicated.app.state.stats_db

    # Asked for a writing session, it still gets a read-only one.
    async with replica.session() as session:
        connection = await session.connection()
        with pytest.raises(sa.exc.DBAPIError):
            await connection.execute(sa.text("CREATE TEMPORARY TABLE t AS SELECT 1 AS x"))


async def test_counting_in_a_read_only_transaction_gives_the_counts_of_temporary_tables(
    replicated: Replicated,
) -> None:
    """The whole catalogue over the primary: with temporary tables (a writable database), and
    read-only with common table expressions (the replica's way), the same counts."""
    tables = [(spec, breakdown(spec, None)) for spec in CATALOGUE.values()]
    scope = Scope(start=date(YEAR, 1, 1), end=date(YEAR, 12, 31), known_on=utcnow())
    primary: Database = replicated.app.state.db
    read_only = Database(replicated.primary, read_only=True)
    try:
        async with primary.session(write=False) as session:
            kept = await count_tables(session, tables=tables, scope=scope)
        async with read_only.session(write=False) as session:
            inline = await count_tables(session, tables=tables, scope=scope)
    finally:
        await read_only.dispose()

    assert inline == kept
    assert kept[0].total == BEFORE_COPY + AFTER_COPY
